-- tools/bench/point_select.lua - sysbench workload: point SELECTs by userid,
-- the statement shape shardwire routes. Run against the router or a shard:
--   sysbench tools/bench/point_select.lua --mysql-host=127.0.0.1 --mysql-port=6033 \
--     --mysql-user=app --mysql-password=app-pw --mysql-db=app --threads=8 --time=10 run
-- (table: accounts (userid BIGINT, id BIGINT, name VARCHAR(100), PRIMARY KEY (userid, id)))
-- --users sets how many userids are drawn from (default 10000).
sysbench.cmdline.options = {
   users = {"userids to draw from", 10000},
   prepared = {"use server-side prepared statements", false},
}

function thread_init()
   drv = sysbench.sql.driver()
   con = drv:connect()
   if sysbench.opt.prepared then
      stmt = con:prepare("SELECT name FROM accounts WHERE userid = ? AND id = 1")
      param = stmt:bind_create(sysbench.sql.type.BIGINT)
      stmt:bind_param(param)
   end
end

function event()
   local u = sysbench.rand.uniform(1, sysbench.opt.users)
   if sysbench.opt.prepared then
      param:set(u)
      stmt:execute()
   else
      con:query(string.format("SELECT name FROM accounts WHERE userid = %d AND id = 1", u))
   end
end

function thread_done()
   if stmt then stmt:close() end
   con:disconnect()
end
