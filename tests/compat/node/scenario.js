#!/usr/bin/env node
// tests/compat/node/scenario.js - the compatibility scenario (see
// tests/compat/README.md) through Node's mysql2.
//
//   node scenario.js query|execute HOST PORT USER PASSWORD DB BASE
//
// query: conn.query() - parameters interpolated by the client, COM_QUERY.
// execute: conn.execute()/conn.prepare() - COM_STMT_PREPARE/EXECUTE; mysql2
// binds a JS number (the userid) as a DOUBLE.
'use strict';
const mysql = require('mysql2/promise');

const NAME = 'O\'Brien "q" back\\slash Zo\u00eb \u00f1 \u4e2d\u6587 \u{1F600}\u{1F389}';
const BIG_MAX = '9223372036854775807';
const BIG_MIN = '-9223372036854775808';
const AMOUNT = '12345678901234.123456';
const AMOUNT2 = '-0.000001';
const TS = '2024-02-29 23:59:58.123456';
const PAYLOAD = Buffer.alloc(512);
for (let i = 0; i < 256; i++) { PAYLOAD[i] = i; PAYLOAD[511 - i] = i; }
let BODY = '';
{
  const parts = [];
  for (let i = 0; i < 32000; i++)
    parts.push(String(i).padStart(6, '0') + ':0123456789abcdef\u00e9\u2713\u{1F600}\n');
  BODY = parts.join('');
}

const failures = [];

function show(v) {
  if (v === null || v === undefined) return String(v);
  if (Buffer.isBuffer(v)) return v.length > 100 ? `Buffer(length ${v.length})` : `Buffer(${v.toString('hex')})`;
  const s = JSON.stringify(v, (k, x) => (typeof x === 'bigint' ? x.toString() + 'n' : x));
  return s.length > 300 ? `${typeof v} of length ${v.length}` : s;
}

function same(a, b) {
  if (Buffer.isBuffer(a) || Buffer.isBuffer(b))
    return Buffer.isBuffer(a) && Buffer.isBuffer(b) && a.equals(b);
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => same(x, b[i]));
  }
  return a === b;
}

function expect(what, got, want) {
  if (!same(got, want)) {
    let extra = '';
    if (typeof got === 'string' && typeof want === 'string' && got.length !== want.length + 1) {
      let i = 0;
      while (i < got.length && i < want.length && got[i] === want[i]) i++;
      extra = ` (first difference at ${i})`;
    }
    throw new Error(`${what}: got ${show(got)}, want ${show(want)}${extra}`);
  }
}

async function step(name, fn) {
  try {
    await fn();
    console.log(`ok ${name}`);
  } catch (e) {
    failures.push(name);
    console.log(`FAIL ${name}: ${e.errno ? `errno ${e.errno}: ` : ''}${String(e.message).slice(0, 2000)}`);
  }
}

async function main() {
  const argv = process.argv.slice(2);
  if (argv.length !== 7 || !['query', 'execute'].includes(argv[0])) {
    console.error('usage: scenario.js query|execute HOST PORT USER PASSWORD DB BASE');
    process.exit(2);
  }
  const [mode, host, port, user, password, database, baseS] = argv;
  const base = Number(baseS);
  const u1 = base + 1, u2 = base + 2, u3 = base + 3;
  const opts = {
    host, port: Number(port), user, password, database, charset: 'utf8mb4',
    supportBigNumbers: true, bigNumberStrings: true, dateStrings: true, connectTimeout: 10000,
  };
  // SW_COMPAT_TLS_CA=<CA file>: over TLS (server certificate not verified)
  if (process.env.SW_COMPAT_TLS_CA)
    opts.ssl = { ca: require('fs').readFileSync(process.env.SW_COMPAT_TLS_CA), rejectUnauthorized: false };
  let conn = null;
  let insertId = null;

  // Runs one statement the way this mode does; rows as arrays.
  async function q(sql, params) {
    const o = { sql, rowsAsArray: true };
    const [res] = mode === 'query' ? await conn.query(o, params) : await conn.execute(o, params || []);
    return res;
  }

  await step('connect', async () => { conn = await mysql.createConnection(opts); });
  if (failures.length) process.exit(1);

  await step('cleanup', async () => {
    for (const u of [u1, u2, u3]) await q('DELETE FROM compat_items WHERE userid = ?', [u]);
  });
  await step('insert_full', async () => {
    const r = await q('INSERT INTO compat_items (userid, k, name, big, amount, ts, payload, body)'
      + " VALUES (?, 'main', ?, ?, ?, ?, ?, ?)", [u1, NAME, BIG_MAX, AMOUNT, TS, PAYLOAD, BODY]);
    expect('affected rows', r.affectedRows, 1);
    insertId = String(r.insertId);
    if (!(Number(insertId) > 0)) throw new Error(`insert id ${insertId}, want > 0`);
  });
  await step('last_insert_id', async () => {
    const rows = await q('SELECT LAST_INSERT_ID()');
    expect('LAST_INSERT_ID()', String(rows[0][0]), insertId);
  });
  await step('read_full', async () => {
    const rows = await q('SELECT id, name, big, amount, ts, payload, body FROM compat_items'
      + " WHERE userid = ? AND k = 'main'", [u1]);
    expect('row count', rows.length, 1);
    const r = rows[0];
    expect('id', String(r[0]), insertId);
    expect('name', r[1], NAME);
    expect('big', r[2], BIG_MAX);
    expect('amount', r[3], AMOUNT);
    expect('ts', r[4], TS);
    expect('payload', r[5], PAYLOAD);
    expect('body', r[6], BODY);
  });
  await step('nulls', async () => {
    await q('INSERT INTO compat_items (userid, k, name, big, amount, ts, payload, body)'
      + " VALUES (?, 'nulls', ?, ?, ?, ?, ?, ?)", [u2, null, null, null, null, null, null]);
    const rows = await q('SELECT name, big, amount, ts, payload, body FROM compat_items'
      + " WHERE userid = ? AND k = 'nulls'", [u2]);
    expect('rows', rows, [[null, null, null, null, null, null]]);
  });
  await step('multi_row', async () => {
    const r = await q(`INSERT INTO compat_items (userid, k, name, big) VALUES (${u3}, 'a', ?, 1),`
      + ` (${u3}, 'b', ?, 2), (${u3}, 'c', ?, 3)`, ['A', 'B', 'C']);
    expect('affected rows', r.affectedRows, 3);
  });
  await step('update_delete', async () => {
    let r = await q("UPDATE compat_items SET name = 'B2' WHERE userid = ? AND k = 'b'", [u3]);
    expect('update affected rows', r.affectedRows, 1);
    r = await q("DELETE FROM compat_items WHERE userid = ? AND k = 'c'", [u3]);
    expect('delete affected rows', r.affectedRows, 1);
    const rows = await q('SELECT k, name, big FROM compat_items WHERE userid = ? ORDER BY k', [u3]);
    expect('rows', rows, [['a', 'A', '1'], ['b', 'B2', '2']]);
  });
  await step('prepared_reuse', async () => {
    const sql = 'SELECT k, big FROM compat_items WHERE userid = ? AND k = ?';
    const cases = [[u3, 'a', [['a', '1']]], [u3, 'b', [['b', '2']]], [u1, 'main', [['main', BIG_MAX]]]];
    if (mode === 'execute') {
      const stmt = await conn.prepare({ sql, rowsAsArray: true });
      try {
        for (const [u, k, want] of cases) {
          const [rows] = await stmt.execute([u, k]);   // (objects: prepare() ignores rowsAsArray)
          expect(`userid ${u} k ${k}`, rows.map((r) => (Array.isArray(r) ? r : [r.k, r.big])), want);
        }
      } finally {
        stmt.close();
      }
    } else {
      for (const [u, k, want] of cases) expect(`userid ${u} k ${k}`, await q(sql, [u, k]), want);
    }
  });
  await step('session_state', async () => {
    await q("SET time_zone = '+05:00', SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE'");
    for (const [u, k] of [[u1, 'main'], [u3, 'a'], [u1, 'main']])
      expect(`userid ${u}`, await q("SELECT @@session.time_zone, @@session.sql_mode, k FROM compat_items WHERE userid = ? AND k = ?", [u, k]), [['+05:00', 'STRICT_ALL_TABLES,NO_ZERO_DATE', k]]);
    expect('unrouted', (await q('SELECT @@session.time_zone'))[0][0], '+05:00');
  });
  await step('warnings', async () => {
    expect('CAST', (await q("SELECT CAST('12abc' AS SIGNED) FROM compat_items WHERE userid = ? AND k = 'a'", [u3])).map((r) => r.map(String)), [['12']]);
    expect('SHOW WARNINGS', await q('SHOW WARNINGS'), [['Warning', 1292, "Truncated incorrect INTEGER value: '12abc'"]]);
  });
  await step('pool_concurrency', async () => {
    // a driver pool of 8 connections, 200 statements in flight at once, for
    // users on both shards
    const pool = mysql.createPool({ ...opts, connectionLimit: 8 });
    try {
      const cases = [[u3, 'a', [['a', '1']]], [u1, 'main', [['main', BIG_MAX]]], [u3, 'b', [['b', '2']]]];
      const sql = { sql: 'SELECT k, big FROM compat_items WHERE userid = ? AND k = ?', rowsAsArray: true };
      const results = await Promise.all(Array.from({ length: 200 }, (_, i) => {
        const [u, k] = cases[i % cases.length];
        return mode === 'query' ? pool.query(sql, [u, k]) : pool.execute(sql, [u, k]);
      }));
      results.forEach(([rows], i) => {
        const [u, k, want] = cases[i % cases.length];
        expect(`statement ${i} (userid ${u} k ${k})`, rows, want);
      });
    } finally {
      await pool.end();
    }
  });
  await step('tx_commit', async () => {
    await conn.beginTransaction();
    await q("INSERT INTO compat_items (userid, k, big, amount) VALUES (?, 'tx-commit', ?, ?)",
      [u1, BIG_MIN, AMOUNT2]);
    const r = await q("UPDATE compat_items SET name = 'committed' WHERE userid = ? AND k = 'tx-commit'", [u1]);
    expect('update affected rows', r.affectedRows, 1);
    await conn.commit();
    const rows = await q("SELECT name, big, amount FROM compat_items WHERE userid = ? AND k = 'tx-commit'", [u1]);
    expect('rows', rows, [['committed', BIG_MIN, AMOUNT2]]);
  });
  await step('tx_rollback', async () => {
    const count = "SELECT COUNT(*) FROM compat_items WHERE userid = ? AND k = 'tx-rollback'";
    await conn.beginTransaction();
    await q("INSERT INTO compat_items (userid, k, name) VALUES (?, 'tx-rollback', 'x')", [u1]);
    expect('count inside the transaction', String((await q(count, [u1]))[0][0]), '1');
    let err = null;     // an error inside the transaction does not end it
    try { await q("INSERT INTO compat_items (userid, k, name) VALUES (?, 'main', 'dup')", [u1]); } catch (e) { err = e; }
    if (!err) throw new Error('duplicate INSERT succeeded');
    expect('errno inside the transaction', err.errno, 1062);
    expect('count after the error', String((await q(count, [u1]))[0][0]), '1');
    await conn.rollback();
    expect('count after rollback', String((await q(count, [u1]))[0][0]), '0');
  });
  await step('duplicate_key', async () => {
    let err = null;
    try {
      await q("INSERT INTO compat_items (userid, k, name) VALUES (?, 'main', 'dup')", [u1]);
    } catch (e) { err = e; }
    if (!err) throw new Error('duplicate INSERT succeeded');
    expect('errno', err.errno, 1062);
    const rows = await q("SELECT name FROM compat_items WHERE userid = ? AND k = 'main'", [u1]);
    expect('after the error', rows, [[NAME]]);
  });
  await step('router_error', async () => {
    let err = null;
    try {
      await q('SELECT k FROM compat_items');
    } catch (e) { err = e; }
    if (!err) throw new Error('SELECT without a userid succeeded');
    expect('errno', err.errno, 1235);
    if (!String(err.sqlMessage).startsWith('shardwire:'))
      throw new Error(`message ${show(err.sqlMessage)} does not start with 'shardwire:'`);
    const rows = await q('SELECT COUNT(*) FROM compat_items WHERE userid = ?', [u3]);
    expect('after the error', String(rows[0][0]), '2');
  });
  await step('ping', async () => { await conn.ping(); });
  await step('reconnect', async () => {
    await conn.end();
    conn = await mysql.createConnection(opts);
    const rows = await q("SELECT name, big FROM compat_items WHERE userid = ? AND k = 'main'", [u1]);
    expect('rows', rows, [[NAME, BIG_MAX]]);
    // a new session starts clean on every shard: nothing of session_state
    for (const [u, k] of [[u1, 'main'], [u3, 'a']])
      expect(`new session, userid ${u}`, await q('SELECT @@session.time_zone, @@session.tx_isolation, k FROM compat_items WHERE userid = ? AND k = ?', [u, k]), [['SYSTEM', 'REPEATABLE-READ', k]]);
  });
  if (conn) conn.destroy();
  if (failures.length) {
    console.log(`FAILED node-mysql2-${mode}: ${failures.join(' ')}`);
    process.exit(1);
  }
  console.log(`PASSED node-mysql2-${mode}`);
}

main().catch((e) => { console.log(`FAIL (uncaught): ${e.stack || e}`); process.exit(1); });
