#!/usr/bin/env sysbench
-- userid_point_select.lua: one primary-key point select per event, keyed by userid.
--
--   SELECT name, balance FROM users WHERE userid = ? AND id = ?
--
-- userid is uniform in 1..--users, id uniform in 1..--user-rows (the data
-- loaded by tools/bench/perf.py). Aim it anywhere with sysbench's own options:
--
--   sysbench tools/bench/userid_point_select.lua --mysql-host=127.0.0.1 --mysql-port=13310 \
--     --mysql-user=app --mysql-password=app --mysql-db=app \
--     --threads=8 --time=20 --report-interval=0 --histogram=on \
--     [--db-ps-mode=disable] run
--
-- --db-ps-mode=auto (sysbench default) uses server-side prepared statements
-- (COM_STMT_PREPARE/EXECUTE, binary rows); --db-ps-mode=disable sends plain
-- COM_QUERY text with the values substituted client-side.
-- --table=NAME changes the table name;
-- --points=N runs N selects per event.

sysbench.cmdline.options = {
   users = {"Number of users: userids are 1..users", 100000},
   user_rows = {"Rows per user in table users: id is 1..user_rows", 2},
   points = {"Point selects per event", 1},
   table = {"Table name", "users"},
}

function thread_init()
   drv = sysbench.sql.driver()
   con = drv:connect()
   stmt = con:prepare(string.format(
      "SELECT name, balance FROM %s WHERE userid = ? AND id = ?",
      sysbench.opt.table))
   p_uid = stmt:bind_create(sysbench.sql.type.BIGINT)
   p_id = stmt:bind_create(sysbench.sql.type.BIGINT)
   stmt:bind_param(p_uid, p_id)
end

function thread_done()
   stmt:close()
   con:disconnect()
end

function event()
   for _ = 1, sysbench.opt.points do
      p_uid:set(sysbench.rand.uniform(1, sysbench.opt.users))
      p_id:set(sysbench.rand.uniform(1, sysbench.opt.user_rows))
      stmt:execute()
   end
end
