/*
 * tests/compat/orm/node/common.js - the ORM scenario's runner for the Node
 * ORMs (Sequelize, Knex, TypeORM): arguments, one step at a time with
 * `ok <step>` / `FAIL <step>: <errno> <message>`. The steps are in each
 * ORM's program; their order and meaning are in tests/compat/orm/README.md.
 */
'use strict';

const STEPS = ['create', 'bulk_create', 'get', 'paginate', 'count', 'save', 'refresh',
  'increment', 'upsert', 'get_or_create', 'relation_create', 'eager', 'lazy', 'delete_object',
  'delete_query', 'tx_commit', 'tx_rollback', 'row_lock', 'second_user'];

function args(argv) {
  const a = argv.slice(2);
  if (a.length !== 7 || !['plain', 'scoped'].includes(a[0])) {
    console.error('usage: ' + argv[1] + ' plain|scoped HOST PORT USER PASSWORD DB BASE');
    process.exit(2);
  }
  const base = Number(a[6]);
  return {
    mode: a[0], scoped: a[0] === 'scoped', host: a[1], port: Number(a[2]), user: a[3],
    password: a[4], db: a[5], base, u1: base + 1, u2: base + 2,
    scope: process.env.SW_ORM_SCOPE || '',
  };
}

/* '<errno> <message>' of the MySQL error under an ORM's error. */
function mysqlError(e) {
  for (let x = e; x; x = x.parent || x.original || x.driverError || x.cause) {
    if (typeof x.errno === 'number' && x.errno >= 1000) return x.errno + ' ' + (x.sqlMessage || x.message).replace(/\s+/g, ' ');
    if (x === x.parent) break;
  }
  return (e && e.name ? e.name + ': ' : '') + String(e && e.message || e).split('\n')[0];
}

function check(cond, what, got) {
  if (!cond) {
    const err = new Error('wrong result: ' + what + (got === undefined ? '' : ' (got ' + JSON.stringify(got) + ')'));
    err.name = 'Check';
    throw err;
  }
}

/* Runs the steps in order: <app> has a method per step and optional
 * beginRequest() (a request's middleware) and close(). */
async function run(app) {
  let failed = 0;
  for (const step of STEPS) {
    try {
      if (app.beginRequest) await app.beginRequest();
      await app[step]();
      console.log('ok ' + step);
    } catch (e) {
      failed++;
      const msg = e.name === 'Check' ? e.message : mysqlError(e);
      console.log('FAIL ' + step + ': ' + msg);
      if (e.name !== 'Check' && !/^1235 /.test(msg)) console.error(e);
    }
  }
  console.log('DONE ' + (STEPS.length - failed) + ' ok, ' + failed + ' failed');
  if (app.close) await app.close();
}

module.exports = { STEPS, args, mysqlError, check, run };
