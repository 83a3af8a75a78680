/*
 * tests/compat/orm/node/knex_app.js - the ORM scenario with Knex 3 (npm,
 * mysql2 driver). Knex is a query builder: the app writes each query.
 *
 *     node knex_app.js plain|scoped HOST PORT USER PASSWORD DB BASE
 *
 * plain: every query names the user (`where({ userid })`, joins on userid).
 * scoped: queries name no user; every query the request builds starts from
 * one helper, db(table), which prefixes the statement comment
 * `/* shardwire:user=K *\/` (SW_ORM_SCOPE_COMMENT, with Knex's .comment()).
 */
'use strict';

const { args, check, run } = require('./common');

const a = args(process.argv);
const knex = require('knex')({
  client: 'mysql2',
  connection: { host: a.host, port: a.port, user: a.user, password: a.password, database: a.db,
    charset: 'utf8mb4', supportBigNumbers: true },
  pool: { min: 0, max: 4 },
});

let user = a.u1;
let firstId = null;
/* The one place a request's queries start from: its table accessor. */
function db(table, k = knex) {
  const q = k(table);
  if (!a.scoped) return q;
  /* SW_ORM_SCOPE_COMMENT is the whole comment; Knex adds the markers */
  const text = process.env.SW_ORM_SCOPE_COMMENT.replace('{userid}', String(user));
  return q.comment(text.replace(/^\/\*\s*|\s*\*\/$/g, ''));
}
const mine = (where = {}) => (a.scoped ? where : { ...where, userid: user });
const notes = (k) => db('orm_notes', k).where(mine());
const first = (k) => notes(k).where({ title: 'first' }).first();

const app = {
  async create() {
    const [id] = await db('orm_notes').insert({ userid: user, title: 'first', body: 'hello' });
    check(id > 0, 'generated id', id);
    firstId = id;
  },
  async bulk_create() {
    await db('orm_notes').insert([1, 2, 3].map((i) => ({ userid: user, title: 'bulk-' + i })));
    const [{ n }] = await notes().where('title', 'like', 'bulk-%').count({ n: '*' });
    check(n === 3, '3 bulk rows', n);
  },
  async get() {
    const n = await notes().where({ id: firstId }).first();
    check(n && n.title === 'first', 'get by id', n);
  },
  async paginate() {
    const got = (await notes().orderBy('title').limit(2).offset(2)).map((n) => n.title);
    check(got.join() === 'bulk-3,first', 'page 2', got);
  },
  async count() {
    const [{ n }] = await notes().count({ n: '*' });
    check(n === 4, '4 notes', n);
  },
  async save() {
    const n = await first();
    n.body = 'edited';
    await notes().where({ id: n.id }).update({ title: n.title, body: n.body, views: n.views });
    check((await first()).body === 'edited', 'saved body');
  },
  async refresh() {
    const n = await first();
    await notes().where({ title: 'first' }).update({ body: 'changed' });
    const r = await notes().where({ id: n.id }).first();
    check(r.body === 'changed', 'refreshed body', r.body);
  },
  async increment() {
    await notes().where({ title: 'first' }).increment('views', 1);
    check((await first()).views === 1, 'views 1');
  },
  async upsert() {
    await db('orm_notes').insert({ userid: user, title: 'first', body: 'upserted' })
      .onConflict(['userid', 'title']).merge(['body']);
    const n = await first();
    check(n.body === 'upserted' && n.views === 1, 'upserted body, views kept', n);
  },
  async get_or_create() {
    const ids = [];
    for (const want of [true, false]) {
      let n = await notes().where({ title: 'goc' }).first();
      const created = !n;
      if (created) [n] = [{ id: (await db('orm_notes').insert({ userid: user, title: 'goc' }))[0] }];
      check(created === want, 'created ' + want);
      ids.push(n.id);
    }
    check(ids[0] === ids[1], 'the same row', ids);
  },
  async relation_create() {
    const n = await first();
    await db('orm_comments').insert(['c1', 'c2'].map((text) => ({ userid: user, note_id: n.id, text })));
    const [{ c }] = await db('orm_comments').where(mine()).count({ c: '*' });
    check(c === 2, '2 comments', c);
  },
  async eager() {
    const q = db('orm_notes as n').leftJoin('orm_comments as c', function on() {
      if (!a.scoped) this.on('c.userid', 'n.userid');
      this.andOn('c.note_id', 'n.id');
    }).select('n.title', 'c.text').orderBy(['n.title', 'c.text']);
    const rows = await (a.scoped ? q : q.where('n.userid', user));
    const got = rows.filter((r) => r.title === 'first').map((r) => r.text);
    check(got.join() === 'c1,c2', 'eager comments', got);
  },
  async lazy() {
    const n = await first();
    const cs = await db('orm_comments').where(mine({ note_id: n.id })).orderBy('text');
    check(cs.map((c) => c.text).join() === 'c1,c2', 'lazy comments', cs);
    const note = await notes().where({ id: cs[0].note_id }).first();
    check(note && note.title === 'first', 'lazy note of a comment');
  },
  async delete_object() {
    const n = await notes().where({ title: 'bulk-3' }).first();
    await notes().where({ id: n.id }).del();
    check(!(await notes().where({ title: 'bulk-3' }).first()), 'gone');
  },
  async delete_query() {
    const n = await notes().where('title', 'like', 'bulk-%').del();
    check(n === 2, '2 deleted', n);
  },
  async tx_commit() {
    await knex.transaction(async (trx) => {
      await db('orm_notes', trx).insert({ userid: user, title: 'tx-a' });
      await notes(trx).where({ title: 'first' }).increment('views', 1);
    });
    check(!!(await notes().where({ title: 'tx-a' }).first()), 'tx-a');
    check((await first()).views === 2, 'views 2');
  },
  async tx_rollback() {
    const trx = await knex.transaction();
    try {
      await db('orm_notes', trx).insert({ userid: user, title: 'tx-b' });
      check(!!(await notes(trx).where({ title: 'tx-b' }).first()), 'tx-b inside');
    } finally {
      await trx.rollback();
    }
    check(!(await notes().where({ title: 'tx-b' }).first()), 'tx-b gone');
  },
  async row_lock() {
    await knex.transaction(async (trx) => {
      const n = await first(trx).forUpdate();
      await notes(trx).where({ id: n.id }).update({ views: n.views + 1 });
    });
    check((await first()).views === 3, 'views 3');
  },
  async second_user() {
    user = a.u2;
    try {
      await db('orm_notes').insert({ userid: user, title: 'other' });
      const [{ n }] = await notes().count({ n: '*' });
      check(n === 1, '1 note of user 2', n);
    } finally {
      user = a.u1;
    }
  },
  close: () => knex.destroy(),
};

run(app).catch((e) => { console.error(e); process.exit(1); });
