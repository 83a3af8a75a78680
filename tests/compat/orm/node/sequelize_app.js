/*
 * tests/compat/orm/node/sequelize_app.js - the ORM scenario with Sequelize 6
 * (npm, mysql2 driver).
 *
 *     node sequelize_app.js plain|scoped HOST PORT USER PASSWORD DB BASE
 *
 * plain: both userid and id are primaryKey (id autoIncrement), so save,
 * reload, increment and destroy address (userid, id); association getters
 * get the user from the app (`getComments({ where: { userid } })`).
 * scoped: id alone is the primary key, as without sharding; the request's
 * user (AsyncLocalStorage) is declared on every connection the pool hands
 * out (the afterPoolAcquire hook) with `SET @shardwire_user = K`.
 */
'use strict';

const { AsyncLocalStorage } = require('async_hooks');
const { Sequelize, DataTypes, Op } = require('sequelize');
const { args, check, run } = require('./common');

const a = args(process.argv);
const request = new AsyncLocalStorage();
const sequelize = new Sequelize(a.db, a.user, a.password, {
  host: a.host, port: a.port, dialect: 'mysql', logging: false,
  dialectOptions: { charset: 'utf8mb4', supportBigNumbers: true, bigNumberStrings: false },
  pool: { max: 4, min: 0 },
});
if (a.scoped) {
  sequelize.addHook('afterPoolAcquire', async (conn) => {
    const user = request.getStore();
    await conn.promise().query(a.scope.replace('{userid}', String(user)));
  });
}

const key = a.scoped ? {} : { primaryKey: true };
const Note = sequelize.define('Note', {
  id: { type: DataTypes.BIGINT, primaryKey: true, autoIncrement: true },
  userid: { type: DataTypes.BIGINT, allowNull: false, ...key },
  title: { type: DataTypes.STRING(100), allowNull: false },
  body: { type: DataTypes.STRING(500) },
  views: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
}, { tableName: 'orm_notes', timestamps: false });
const Comment = sequelize.define('Comment', {
  id: { type: DataTypes.BIGINT, primaryKey: true, autoIncrement: true },
  userid: { type: DataTypes.BIGINT, allowNull: false, ...key },
  note_id: { type: DataTypes.BIGINT, allowNull: false },
  text: { type: DataTypes.STRING(200), allowNull: false },
}, { tableName: 'orm_comments', timestamps: false });
Note.hasMany(Comment, { as: 'comments', foreignKey: 'note_id', sourceKey: 'id', constraints: false });
Comment.belongsTo(Note, { as: 'note', foreignKey: 'note_id', targetKey: 'id', constraints: false });

let user = a.u1;
let firstId = null;
const mine = (where = {}) => (a.scoped ? where : { ...where, userid: user });
const first = (opts = {}) => Note.findOne({ where: mine({ title: 'first' }), ...opts });

const app = {
  async create() {
    const n = await Note.create({ userid: user, title: 'first', body: 'hello' });
    check(Number(n.id) > 0, 'generated id', n.id);
    firstId = n.id;
  },
  async bulk_create() {
    await Note.bulkCreate([1, 2, 3].map((i) => ({ userid: user, title: 'bulk-' + i })));
    const n = await Note.count({ where: mine({ title: { [Op.startsWith]: 'bulk-' } }) });
    check(n === 3, '3 bulk rows', n);
  },
  async get() {
    const n = a.scoped ? await Note.findByPk(firstId)
      : await Note.findOne({ where: { userid: user, id: firstId } });
    check(n && n.title === 'first', 'get by identity', n && n.title);
  },
  async paginate() {
    const { count, rows } = await Note.findAndCountAll({ where: mine(), order: [['title', 'ASC']], limit: 2, offset: 2 });
    const got = rows.map((n) => n.title);
    check(count === 4 && got.join() === 'bulk-3,first', 'page 2 of 4', [count, got]);
  },
  async count() {
    const n = await Note.count({ where: mine() });
    check(n === 4, '4 notes', n);
  },
  async save() {
    const n = await first();
    n.body = 'edited';
    await n.save();
    check((await first()).body === 'edited', 'saved body');
  },
  async refresh() {
    const n = await first();
    await Note.update({ body: 'changed' }, { where: { userid: user, title: 'first' } });
    await n.reload();
    check(n.body === 'changed', 'refreshed body', n.body);
  },
  async increment() {
    const n = await first();
    await n.increment('views');
    check((await first()).views === 1, 'views 1');
  },
  async upsert() {
    await Note.upsert({ userid: user, title: 'first', body: 'upserted' }, { fields: ['body'] });
    const n = await first();
    check(n.body === 'upserted' && n.views === 1, 'upserted body, views kept', [n.body, n.views]);
    check(await Note.count({ where: mine() }) === 4, 'still 4 notes');
  },
  async get_or_create() {
    const [x, c1] = await Note.findOrCreate({ where: { userid: user, title: 'goc' } });
    const [y, c2] = await Note.findOrCreate({ where: { userid: user, title: 'goc' } });
    check(c1 === true && c2 === false && String(x.id) === String(y.id), 'created then found', [c1, c2]);
  },
  async relation_create() {
    const n = await first();
    await n.createComment({ userid: user, text: 'c1' });
    await n.createComment({ userid: user, text: 'c2' });
    check(await Comment.count({ where: mine() }) === 2, '2 comments');
  },
  async eager() {
    const notes = await Note.findAll({
      where: mine(),
      include: [{ model: Comment, as: 'comments', where: mine(), required: false }],
      order: [['title', 'ASC'], [{ model: Comment, as: 'comments' }, 'text', 'ASC']],
    });
    const f = notes.find((n) => n.title === 'first');
    const got = f && f.comments.map((c) => c.text).join();
    check(got === 'c1,c2', 'eager comments', got);
  },
  async lazy() {
    const n = await first();
    const cs = await n.getComments({ where: mine(), order: [['text', 'ASC']] });
    check(cs.map((c) => c.text).join() === 'c1,c2', 'lazy comments', cs.map((c) => c.text));
    const c = await Comment.findOne({ where: mine({ text: 'c1' }) });
    const note = await c.getNote({ where: mine() });
    check(note && note.title === 'first', 'lazy note of a comment');
  },
  async delete_object() {
    const n = await Note.findOne({ where: mine({ title: 'bulk-3' }) });
    await n.destroy();
    check(await Note.count({ where: mine({ title: 'bulk-3' }) }) === 0, 'gone');
  },
  async delete_query() {
    const n = await Note.destroy({ where: mine({ title: { [Op.startsWith]: 'bulk-' } }) });
    check(n === 2, '2 deleted', n);
    check(await Note.count({ where: mine() }) === 2, '2 notes left');
  },
  async tx_commit() {
    await sequelize.transaction(async (t) => {
      await Note.create({ userid: user, title: 'tx-a' }, { transaction: t });
      const n = await first({ transaction: t });
      n.views += 1;
      await n.save({ transaction: t });
    });
    check(await Note.count({ where: mine({ title: 'tx-a' }) }) === 1, 'tx-a');
    check((await first()).views === 2, 'views 2');
  },
  async tx_rollback() {
    const t = await sequelize.transaction();
    try {
      await Note.create({ userid: user, title: 'tx-b' }, { transaction: t });
      check(await Note.count({ where: mine({ title: 'tx-b' }), transaction: t }) === 1, 'tx-b inside');
    } finally {
      await t.rollback();
    }
    check(await Note.count({ where: mine({ title: 'tx-b' }) }) === 0, 'tx-b gone');
  },
  async row_lock() {
    await sequelize.transaction(async (t) => {
      const n = await first({ transaction: t, lock: t.LOCK.UPDATE });
      n.views += 1;
      await n.save({ transaction: t });
    });
    check((await first()).views === 3, 'views 3');
  },
  async second_user() {
    user = a.u2;
    try {
      await request.run(user, async () => {
        await Note.create({ userid: user, title: 'other' });
        check(await Note.count({ where: mine() }) === 1, '1 note of user 2');
      });
    } finally {
      user = a.u1;
    }
  },
  close: () => sequelize.close(),
};

request.run(a.u1, () => run(app)).catch((e) => { console.error(e); process.exit(1); });
