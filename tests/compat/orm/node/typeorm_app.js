/*
 * tests/compat/orm/node/typeorm_app.js - the ORM scenario with TypeORM 0.3
 * (npm, mysql2 driver; entities as EntitySchema, plain JavaScript).
 *
 *     node typeorm_app.js plain|scoped HOST PORT USER PASSWORD DB BASE
 *
 * plain: userid and id are both primary columns (id generated), and the
 * relation joins on (note_id, userid), so save, remove, reload and the lazy
 * relations address the user. scoped: id alone is primary, as without
 * sharding; each request runs on its own QueryRunner, on which the user is
 * declared once (`SET @shardwire_user = K`).
 */
'use strict';

require('reflect-metadata');
const { DataSource, EntitySchema, Like } = require('typeorm');
const { args, check, run } = require('./common');

const a = args(process.argv);
const joinCols = a.scoped ? [{ name: 'note_id', referencedColumnName: 'id' }]
  : [{ name: 'note_id', referencedColumnName: 'id' }, { name: 'userid', referencedColumnName: 'userid' }];
const Note = new EntitySchema({
  name: 'Note', tableName: 'orm_notes',
  columns: {
    id: { type: 'bigint', primary: true, generated: 'increment' },
    userid: { type: 'bigint', primary: !a.scoped },
    title: { type: 'varchar', length: 100 },
    body: { type: 'varchar', length: 500, nullable: true },
    views: { type: 'int', default: 0 },
  },
  relations: {
    comments: { type: 'one-to-many', target: 'Comment', inverseSide: 'note', lazy: true },
  },
});
const Comment = new EntitySchema({
  name: 'Comment', tableName: 'orm_comments',
  columns: {
    id: { type: 'bigint', primary: true, generated: 'increment' },
    userid: { type: 'bigint', primary: !a.scoped },
    note_id: { type: 'bigint' },
    text: { type: 'varchar', length: 200 },
  },
  relations: {
    note: { type: 'many-to-one', target: 'Note', inverseSide: 'comments', joinColumn: joinCols,
      lazy: true, createForeignKeyConstraints: false },
  },
});
const ds = new DataSource({
  type: 'mysql', host: a.host, port: a.port, username: a.user, password: a.password,
  database: a.db, charset: 'utf8mb4', supportBigNumbers: true, bigNumberStrings: false,
  entities: [Note, Comment], synchronize: false, logging: false, poolSize: 4,
});

let user = a.u1;
let firstId = null;
let em = null;          /* the request's EntityManager */
let runner = null;      /* scoped: the request's QueryRunner */
const mine = (where = {}) => (a.scoped ? where : { ...where, userid: user });
const notes = () => em.getRepository('Note');
const first = () => notes().findOneByOrFail(mine({ title: 'first' }));
const titles = (rows) => rows.map((n) => n.title).join();

const app = {
  async beginRequest() {
    if (runner) await runner.release();
    runner = null;
    em = ds.manager;
    if (a.scoped) {
      runner = ds.createQueryRunner();
      await runner.connect();
      await runner.query(a.scope.replace('{userid}', String(user)));
      em = runner.manager;
    }
  },
  async create() {
    const n = await notes().save(notes().create({ userid: user, title: 'first', body: 'hello' }));
    check(Number(n.id) > 0 && n.views === 0, 'generated id and default', n);
    firstId = n.id;
  },
  async bulk_create() {
    await notes().insert([1, 2, 3].map((i) => ({ userid: user, title: 'bulk-' + i })));
    const n = await notes().countBy(mine({ title: Like('bulk-%') }));
    check(n === 3, '3 bulk rows', n);
  },
  async get() {
    const n = await notes().findOneBy(mine({ id: firstId }));
    check(n && n.title === 'first', 'get by identity', n);
  },
  async paginate() {
    const [rows, count] = await notes().findAndCount({ where: mine(), order: { title: 'ASC' }, skip: 2, take: 2 });
    check(count === 4 && titles(rows) === 'bulk-3,first', 'page 2 of 4', [count, titles(rows)]);
  },
  async count() {
    const n = await notes().countBy(mine());
    check(n === 4, '4 notes', n);
  },
  async save() {
    const n = await first();
    n.body = 'edited';
    await notes().save(n);
    check((await first()).body === 'edited', 'saved body');
  },
  async refresh() {
    const n = await first();
    await notes().update(mine({ title: 'first' }), { body: 'changed' });
    notes().merge(n, await notes().findOneByOrFail(notes().getId(n)));
    check(n.body === 'changed', 'refreshed body', n.body);
  },
  async increment() {
    await notes().increment(mine({ title: 'first' }), 'views', 1);
    check((await first()).views === 1, 'views 1');
  },
  async upsert() {
    await notes().upsert({ userid: user, title: 'first', body: 'upserted' }, ['userid', 'title']);
    const n = await first();
    check(n.body === 'upserted' && n.views === 1, 'upserted body, views kept', n);
    check(await notes().countBy(mine()) === 4, 'still 4 notes');
  },
  async get_or_create() {
    const ids = [];
    for (const want of [true, false]) {
      let n = await notes().findOneBy(mine({ title: 'goc' }));
      const created = !n;
      if (created) n = await notes().save(notes().create({ userid: user, title: 'goc' }));
      check(created === want, 'created ' + want);
      ids.push(String(n.id));
    }
    check(ids[0] === ids[1], 'the same row', ids);
  },
  async relation_create() {
    const n = await first();
    const repo = em.getRepository('Comment');
    for (const text of ['c1', 'c2']) await repo.save(repo.create({ userid: user, note_id: n.id, text }));
    check(await repo.countBy(mine()) === 2, '2 comments');
  },
  async eager() {
    const rows = await notes().find({ where: mine(), relations: { comments: true },
      order: { title: 'ASC', comments: { text: 'ASC' } } });
    const f = rows.find((n) => n.title === 'first');
    const got = f && (await f.comments).map((c) => c.text).join();
    check(got === 'c1,c2', 'eager comments', got);
  },
  async lazy() {
    const n = await first();
    const got = (await n.comments).map((c) => c.text).sort().join();
    check(got === 'c1,c2', 'lazy comments', got);
    const c = await em.getRepository('Comment').findOneByOrFail(mine({ text: 'c1' }));
    const note = await c.note;
    check(note && note.title === 'first', 'lazy note of a comment', note);
  },
  async delete_object() {
    await notes().remove(await notes().findOneByOrFail(mine({ title: 'bulk-3' })));
    check(await notes().countBy(mine({ title: 'bulk-3' })) === 0, 'gone');
  },
  async delete_query() {
    const r = await notes().delete(mine({ title: Like('bulk-%') }));
    check(r.affected === 2, '2 deleted', r.affected);
    check(await notes().countBy(mine()) === 2, '2 notes left');
  },
  async tx_commit() {
    await em.transaction(async (t) => {
      await t.save('Note', t.create('Note', { userid: user, title: 'tx-a' }));
      const n = await t.findOneByOrFail('Note', mine({ title: 'first' }));
      n.views += 1;
      await t.save('Note', n);
    });
    check(await notes().countBy(mine({ title: 'tx-a' })) === 1, 'tx-a');
    check((await first()).views === 2, 'views 2');
  },
  async tx_rollback() {
    const qr = runner || ds.createQueryRunner();
    await qr.startTransaction();
    try {
      await qr.manager.insert('Note', { userid: user, title: 'tx-b' });
      check(await qr.manager.countBy('Note', mine({ title: 'tx-b' })) === 1, 'tx-b inside');
    } finally {
      await qr.rollbackTransaction();
      if (qr !== runner) await qr.release();
    }
    check(await notes().countBy(mine({ title: 'tx-b' })) === 0, 'tx-b gone');
  },
  async row_lock() {
    await em.transaction(async (t) => {
      const n = await t.findOne('Note', { where: mine({ title: 'first' }), lock: { mode: 'pessimistic_write' } });
      n.views += 1;
      await t.save('Note', n);
    });
    check((await first()).views === 3, 'views 3');
  },
  async second_user() {
    user = a.u2;
    try {
      await app.beginRequest();
      await notes().save(notes().create({ userid: user, title: 'other' }));
      check(await notes().countBy(mine()) === 1, '1 note of user 2');
    } finally {
      user = a.u1;
    }
  },
  async close() {
    if (runner) await runner.release();
    await ds.destroy();
  },
};

ds.initialize().then(() => run(app)).catch((e) => { console.error(e); process.exit(1); });
