#!/usr/bin/env sysbench
-- userid_oltp.lua: a web-app-like transaction on one user per event.
--
--   BEGIN
--   SELECT name, balance FROM users WHERE userid = ? AND id = ?
--   SELECT id, name, balance FROM users WHERE userid = ?
--   SELECT item_id, payload, created FROM items WHERE userid = ?
--          ORDER BY item_id DESC LIMIT 10
--   UPDATE users SET balance = balance + ? WHERE userid = ? AND id = ?
--   INSERT INTO items (userid, payload, created) VALUES (?, ?, NOW())
--   COMMIT
--
-- = 7 statements per transaction (3 reads, 2 writes, 2 other); sysbench's
-- "queries" counts all 7, latency is per transaction. Every statement carries
-- exactly one literal userid, so a userid router can route each one.
--
--   sysbench tools/bench/userid_oltp.lua --mysql-host=127.0.0.1 --mysql-port=13310 \
--     --mysql-user=app --mysql-password=app --mysql-db=app \
--     --threads=8 --time=20 --histogram=on [--db-ps-mode=disable] run
--
-- --users/--user-rows must match the loaded data; --users-table/--items-table
-- rename the tables; --reads=0 --writes=0 vary the mix (extra point selects /
-- extra updates per transaction); --skip-trx=on drops BEGIN/COMMIT (autocommit).

sysbench.cmdline.options = {
   users = {"Number of users: userids are 1..users", 100000},
   user_rows = {"Rows per user in table users: id is 1..user_rows", 2},
   reads = {"Extra point selects per transaction", 0},
   writes = {"Extra balance updates per transaction", 0},
   skip_trx = {"Do not wrap the statements in BEGIN/COMMIT", false},
   users_table = {"users table name", "users"},
   items_table = {"items table name", "items"},
}

-- sysbench default is to retry transactions on deadlock/lock-wait errors
-- listed in --mysql-ignore-errors (1213,1020,1205).

local function prep(sql)
   return con:prepare(sql)
end

function thread_init()
   drv = sysbench.sql.driver()
   con = drv:connect()
   local ut, it = sysbench.opt.users_table, sysbench.opt.items_table
   local B = sysbench.sql.type.BIGINT

   s_begin = prep("BEGIN")
   s_commit = prep("COMMIT")

   s_point = prep(string.format(
      "SELECT name, balance FROM %s WHERE userid = ? AND id = ?", ut))
   s_point_uid = s_point:bind_create(B)
   s_point_id = s_point:bind_create(B)
   s_point:bind_param(s_point_uid, s_point_id)

   s_user = prep(string.format(
      "SELECT id, name, balance FROM %s WHERE userid = ?", ut))
   s_user_uid = s_user:bind_create(B)
   s_user:bind_param(s_user_uid)

   s_items = prep(string.format(
      "SELECT item_id, payload, created FROM %s WHERE userid = ? " ..
      "ORDER BY item_id DESC LIMIT 10", it))
   s_items_uid = s_items:bind_create(B)
   s_items:bind_param(s_items_uid)

   s_upd = prep(string.format(
      "UPDATE %s SET balance = balance + ? WHERE userid = ? AND id = ?", ut))
   s_upd_delta = s_upd:bind_create(B)
   s_upd_uid = s_upd:bind_create(B)
   s_upd_id = s_upd:bind_create(B)
   s_upd:bind_param(s_upd_delta, s_upd_uid, s_upd_id)

   s_ins = prep(string.format(
      "INSERT INTO %s (userid, payload, created) VALUES (?, ?, NOW())", it))
   s_ins_uid = s_ins:bind_create(B)
   s_ins_payload = s_ins:bind_create(sysbench.sql.type.VARCHAR, 255)
   s_ins:bind_param(s_ins_uid, s_ins_payload)
end

function thread_done()
   con:disconnect()
end

local function rand_id()
   return sysbench.rand.uniform(1, sysbench.opt.user_rows)
end

function event()
   local uid = sysbench.rand.uniform(1, sysbench.opt.users)
   local trx = not sysbench.opt.skip_trx

   if trx then s_begin:execute() end

   s_point_uid:set(uid); s_point_id:set(rand_id())
   s_point:execute()
   for _ = 1, sysbench.opt.reads do
      s_point_id:set(rand_id())
      s_point:execute()
   end

   s_user_uid:set(uid)
   s_user:execute()

   s_items_uid:set(uid)
   s_items:execute()

   s_upd_delta:set(sysbench.rand.uniform(1, 21) - 11)
   s_upd_uid:set(uid); s_upd_id:set(rand_id())
   s_upd:execute()
   for _ = 1, sysbench.opt.writes do
      s_upd_id:set(rand_id())
      s_upd:execute()
   end

   s_ins_uid:set(uid)
   s_ins_payload:set(sysbench.rand.string(string.rep("@", 40)))
   s_ins:execute()

   if trx then s_commit:execute() end
end
