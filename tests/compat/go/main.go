// tests/compat/go/main.go - the compatibility scenario (see
// tests/compat/README.md) through database/sql and go-sql-driver/mysql
// (Debian's golang-github-go-sql-driver-mysql-dev, built with GOPATH).
//
//	scenario HOST PORT USER PASSWORD DB BASE
//
// Without interpolateParams the driver prepares, executes and closes a
// statement for every query that has arguments; prepared_reuse keeps one.
package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/go-sql-driver/mysql"
)

const (
	NAME    = "O'Brien \"q\" back\\slash Zo\u00eb \u00f1 \u4e2d\u6587 \U0001F600\U0001F389"
	BIG_MAX = int64(9223372036854775807)
	BIG_MIN = int64(-9223372036854775808)
	AMOUNT  = "12345678901234.123456"
	AMOUNT2 = "-0.000001"
	TS      = "2024-02-29 23:59:58.123456"
)

var (
	PAYLOAD  []byte
	BODY     string
	failures []string
	ctx      = context.Background()
)

func init() {
	PAYLOAD = make([]byte, 512)
	for i := 0; i < 256; i++ {
		PAYLOAD[i] = byte(i)
		PAYLOAD[511-i] = byte(i)
	}
	var b strings.Builder
	for i := 0; i < 32000; i++ {
		fmt.Fprintf(&b, "%06d:0123456789abcdef\u00e9\u2713\U0001F600\n", i)
	}
	BODY = b.String()
}

func step(name string, fn func() error) {
	if err := fn(); err != nil {
		failures = append(failures, name)
		msg := err.Error()
		if len(msg) > 2000 {
			msg = msg[:2000]
		}
		fmt.Printf("FAIL %s: %s\n", name, msg)
		return
	}
	fmt.Printf("ok %s\n", name)
}

func show(v interface{}) string {
	s := fmt.Sprintf("%v", v)
	if _, ok := v.(string); ok {
		s = fmt.Sprintf("%q", v)
	}
	if len(s) > 300 {
		return fmt.Sprintf("%T of length %d", v, len(fmt.Sprint(v)))
	}
	return s
}

func expect(what string, got, want interface{}) error {
	if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", want) {
		extra := ""
		gs, ok1 := got.(string)
		ws, ok2 := want.(string)
		if ok1 && ok2 {
			i := 0
			for i < len(gs) && i < len(ws) && gs[i] == ws[i] {
				i++
			}
			extra = fmt.Sprintf(" (first difference at byte %d)", i)
		}
		return fmt.Errorf("%s: got %s, want %s%s", what, show(got), show(want), extra)
	}
	return nil
}

// cell is one value as text; nil for NULL.
type row []*string

func str(s string) *string { return &s }

func collect(rs *sql.Rows) ([]row, error) {
	defer rs.Close()
	cols, err := rs.Columns()
	if err != nil {
		return nil, err
	}
	var out []row
	for rs.Next() {
		vals := make([][]byte, len(cols))
		ptrs := make([]interface{}, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rs.Scan(ptrs...); err != nil {
			return nil, err
		}
		r := make(row, len(cols))
		for i, v := range vals {
			if v != nil {
				r[i] = str(string(v))
			}
		}
		out = append(out, r)
	}
	return out, rs.Err()
}

func fmtRows(rs []row) string {
	var parts []string
	for _, r := range rs {
		var cells []string
		for _, c := range r {
			if c == nil {
				cells = append(cells, "NULL")
			} else if len(*c) > 200 {
				cells = append(cells, fmt.Sprintf("<%d bytes>", len(*c)))
			} else {
				cells = append(cells, strconv.Quote(*c))
			}
		}
		parts = append(parts, "("+strings.Join(cells, ", ")+")")
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func expectRows(what string, got []row, want ...[]interface{}) error {
	var w []row
	for _, r := range want {
		wr := make(row, len(r))
		for i, c := range r {
			if c != nil {
				wr[i] = str(fmt.Sprint(c))
			}
		}
		w = append(w, wr)
	}
	if fmtRows(got) != fmtRows(w) {
		return fmt.Errorf("%s: got %s, want %s", what, fmtRows(got), fmtRows(w))
	}
	for i := range got { // fmtRows abbreviates long values: compare them fully
		for j := range got[i] {
			if got[i][j] != nil && w[i][j] != nil && *got[i][j] != *w[i][j] {
				return fmt.Errorf("%s: row %d column %d differs", what, i, j)
			}
		}
	}
	return nil
}

func r(vals ...interface{}) []interface{} { return vals }

func mysqlErrno(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

func main() {
	if len(os.Args) != 7 {
		fmt.Fprintln(os.Stderr, "usage: scenario HOST PORT USER PASSWORD DB BASE")
		os.Exit(2)
	}
	host, port, user, password, dbname := os.Args[1], os.Args[2], os.Args[3], os.Args[4], os.Args[5]
	base, err := strconv.ParseInt(os.Args[6], 10, 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bad BASE:", err)
		os.Exit(2)
	}
	u1, u2, u3 := base+1, base+2, base+3
	dsn := fmt.Sprintf("%s:%s@tcp(%s:%s)/%s?charset=utf8mb4&timeout=10s&maxAllowedPacket=0",
		user, password, host, port, dbname)
	if os.Getenv("SW_COMPAT_TLS_CA") != "" { // over TLS, server certificate not verified
		dsn += "&tls=skip-verify"
	}
	var db *sql.DB
	var conn *sql.Conn
	var id int64

	connect := func() error {
		var err error
		if db, err = sql.Open("mysql", dsn); err != nil {
			return err
		}
		conn, err = db.Conn(ctx) // one session for the whole scenario
		return err
	}
	query := func(q string, args ...interface{}) ([]row, error) {
		rs, err := conn.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, err
		}
		return collect(rs)
	}
	exec := func(q string, args ...interface{}) (int64, error) {
		res, err := conn.ExecContext(ctx, q, args...)
		if err != nil {
			return 0, err
		}
		return res.RowsAffected()
	}

	step("connect", connect)
	if len(failures) > 0 {
		fmt.Println("FAILED go-sql-driver: connect")
		os.Exit(1)
	}
	step("cleanup", func() error {
		for _, u := range []int64{u1, u2, u3} {
			if _, err := exec("DELETE FROM compat_items WHERE userid = ?", u); err != nil {
				return err
			}
		}
		return nil
	})
	step("insert_full", func() error {
		res, err := conn.ExecContext(ctx, "INSERT INTO compat_items (userid, k, name, big, amount, ts, payload, body)"+
			" VALUES (?, 'main', ?, ?, ?, ?, ?, ?)", u1, NAME, BIG_MAX, AMOUNT, TS, PAYLOAD, BODY)
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		if err := expect("affected rows", n, int64(1)); err != nil {
			return err
		}
		if id, err = res.LastInsertId(); err != nil {
			return err
		}
		if id <= 0 {
			return fmt.Errorf("insert id %d, want > 0", id)
		}
		return nil
	})
	step("last_insert_id", func() error {
		rows, err := query("SELECT LAST_INSERT_ID()")
		if err != nil {
			return err
		}
		return expectRows("LAST_INSERT_ID()", rows, r(id))
	})
	step("read_full", func() error {
		rs, err := conn.QueryContext(ctx, "SELECT id, name, big, amount, ts, payload, body FROM compat_items"+
			" WHERE userid = ? AND k = 'main'", u1)
		if err != nil {
			return err
		}
		defer rs.Close()
		if !rs.Next() {
			return fmt.Errorf("no row (%v)", rs.Err())
		}
		var gid, big int64
		var name, amount, ts, body string
		var payload []byte
		if err := rs.Scan(&gid, &name, &big, &amount, &ts, &payload, &body); err != nil {
			return err
		}
		for _, e := range []error{expect("id", gid, id), expect("name", name, NAME), expect("big", big, BIG_MAX),
			expect("amount", amount, AMOUNT), expect("ts", ts, TS), expect("body", body, BODY)} {
			if e != nil {
				return e
			}
		}
		if !bytes.Equal(payload, PAYLOAD) {
			return fmt.Errorf("payload: got %x, want %x", payload, PAYLOAD)
		}
		if rs.Next() {
			return fmt.Errorf("more than one row")
		}
		return rs.Err()
	})
	step("nulls", func() error {
		if _, err := exec("INSERT INTO compat_items (userid, k, name, big, amount, ts, payload, body)"+
			" VALUES (?, 'nulls', ?, ?, ?, ?, ?, ?)", u2, nil, nil, nil, nil, nil, nil); err != nil {
			return err
		}
		rows, err := query("SELECT name, big, amount, ts, payload, body FROM compat_items WHERE userid = ? AND k = 'nulls'", u2)
		if err != nil {
			return err
		}
		return expectRows("rows", rows, r(nil, nil, nil, nil, nil, nil))
	})
	step("multi_row", func() error {
		n, err := exec(fmt.Sprintf("INSERT INTO compat_items (userid, k, name, big) VALUES (%d, 'a', ?, 1),"+
			" (%d, 'b', ?, 2), (%d, 'c', ?, 3)", u3, u3, u3), "A", "B", "C")
		if err != nil {
			return err
		}
		return expect("affected rows", n, int64(3))
	})
	step("update_delete", func() error {
		n, err := exec("UPDATE compat_items SET name = 'B2' WHERE userid = ? AND k = 'b'", u3)
		if err != nil {
			return err
		}
		if err := expect("update affected rows", n, int64(1)); err != nil {
			return err
		}
		if n, err = exec("DELETE FROM compat_items WHERE userid = ? AND k = 'c'", u3); err != nil {
			return err
		}
		if err := expect("delete affected rows", n, int64(1)); err != nil {
			return err
		}
		rows, err := query("SELECT k, name, big FROM compat_items WHERE userid = ? ORDER BY k", u3)
		if err != nil {
			return err
		}
		return expectRows("rows", rows, r("a", "A", 1), r("b", "B2", 2))
	})
	step("prepared_reuse", func() error {
		st, err := conn.PrepareContext(ctx, "SELECT k, big FROM compat_items WHERE userid = ? AND k = ?")
		if err != nil {
			return err
		}
		defer st.Close()
		for _, c := range []struct {
			u    int64
			k    string
			want []interface{}
		}{{u3, "a", r("a", 1)}, {u3, "b", r("b", 2)}, {u1, "main", r("main", BIG_MAX)}} {
			rs, err := st.QueryContext(ctx, c.u, c.k)
			if err != nil {
				return err
			}
			rows, err := collect(rs)
			if err != nil {
				return err
			}
			if err := expectRows(fmt.Sprintf("userid %d k %s", c.u, c.k), rows, c.want); err != nil {
				return err
			}
		}
		return nil
	})
	step("session_state", func() error {
		if _, err := exec("SET time_zone = '+05:00', SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE'"); err != nil {
			return err
		}
		for _, c := range []struct {
			u int64
			k string
		}{{u1, "main"}, {u3, "a"}, {u1, "main"}} {
			rows, err := query("SELECT @@session.time_zone, @@session.sql_mode, k FROM compat_items WHERE userid = ? AND k = ?", c.u, c.k)
			if err != nil {
				return err
			}
			if err := expectRows(fmt.Sprintf("userid %d", c.u), rows, r("+05:00", "STRICT_ALL_TABLES,NO_ZERO_DATE", c.k)); err != nil {
				return err
			}
		}
		rows, err := query("SELECT @@session.time_zone")
		if err != nil {
			return err
		}
		return expectRows("unrouted", rows, r("+05:00"))
	})
	step("warnings", func() error {
		rows, err := query("SELECT CAST('12abc' AS SIGNED) FROM compat_items WHERE userid = ? AND k = 'a'", u3)
		if err != nil {
			return err
		}
		if err := expectRows("CAST", rows, r(12)); err != nil {
			return err
		}
		if rows, err = query("SHOW WARNINGS"); err != nil {
			return err
		}
		return expectRows("SHOW WARNINGS", rows, r("Warning", 1292, "Truncated incorrect INTEGER value: '12abc'"))
	})
	step("pool_concurrency", func() error {
		// database/sql's pool (up to 8 connections), 200 goroutines, users
		// on both shards; each query is a prepare/execute/close
		db.SetMaxOpenConns(8)
		cases := []struct {
			u    int64
			k    string
			want []interface{}
		}{{u3, "a", r("a", 1)}, {u1, "main", r("main", BIG_MAX)}, {u3, "b", r("b", 2)}}
		errs := make(chan error, 200)
		for i := 0; i < 200; i++ {
			go func(i int) {
				c := cases[i%len(cases)]
				rs, err := db.QueryContext(ctx, "SELECT k, big FROM compat_items WHERE userid = ? AND k = ?", c.u, c.k)
				if err == nil {
					var rows []row
					if rows, err = collect(rs); err == nil {
						err = expectRows(fmt.Sprintf("query %d (userid %d k %s)", i, c.u, c.k), rows, c.want)
					}
				}
				errs <- err
			}(i)
		}
		var first error
		bad := 0
		for i := 0; i < 200; i++ {
			if err := <-errs; err != nil {
				bad++
				if first == nil {
					first = err
				}
			}
		}
		if first != nil {
			return fmt.Errorf("%d of 200 failed; first: %v", bad, first)
		}
		return nil
	})
	step("tx_commit", func() error {
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, "INSERT INTO compat_items (userid, k, big, amount) VALUES (?, 'tx-commit', ?, ?)",
			u1, BIG_MIN, AMOUNT2); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, "UPDATE compat_items SET name = 'committed' WHERE userid = ? AND k = 'tx-commit'", u1)
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		if err := expect("update affected rows", n, int64(1)); err != nil {
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		rows, err := query("SELECT name, big, amount FROM compat_items WHERE userid = ? AND k = 'tx-commit'", u1)
		if err != nil {
			return err
		}
		return expectRows("rows", rows, r("committed", BIG_MIN, AMOUNT2))
	})
	step("tx_rollback", func() error {
		count := "SELECT COUNT(*) FROM compat_items WHERE userid = ? AND k = 'tx-rollback'"
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO compat_items (userid, k, name) VALUES (?, 'tx-rollback', 'x')", u1); err != nil {
			tx.Rollback()
			return err
		}
		rs, err := tx.QueryContext(ctx, count, u1)
		if err != nil {
			tx.Rollback()
			return err
		}
		rows, err := collect(rs)
		if err != nil {
			tx.Rollback()
			return err
		}
		if err := expectRows("count inside the transaction", rows, r(1)); err != nil {
			tx.Rollback()
			return err
		}
		// an error inside the transaction does not end it
		_, err = tx.ExecContext(ctx, "INSERT INTO compat_items (userid, k, name) VALUES (?, 'main', 'dup')", u1)
		if e := expect("errno inside the transaction", mysqlErrno(err), uint16(1062)); e != nil {
			tx.Rollback()
			return fmt.Errorf("%v (%v)", e, err)
		}
		if rs, err = tx.QueryContext(ctx, count, u1); err != nil {
			tx.Rollback()
			return err
		}
		if rows, err = collect(rs); err != nil {
			tx.Rollback()
			return err
		}
		if err := expectRows("count after the error", rows, r(1)); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Rollback(); err != nil {
			return err
		}
		if rows, err = query(count, u1); err != nil {
			return err
		}
		return expectRows("count after rollback", rows, r(0))
	})
	step("duplicate_key", func() error {
		_, err := exec("INSERT INTO compat_items (userid, k, name) VALUES (?, 'main', 'dup')", u1)
		if err == nil {
			return fmt.Errorf("duplicate INSERT succeeded")
		}
		if e := expect("errno", mysqlErrno(err), uint16(1062)); e != nil {
			return fmt.Errorf("%v (%v)", e, err)
		}
		rows, err := query("SELECT name FROM compat_items WHERE userid = ? AND k = 'main'", u1)
		if err != nil {
			return err
		}
		return expectRows("after the error", rows, r(NAME))
	})
	step("router_error", func() error {
		_, err := query("SELECT k FROM compat_items")
		if err == nil {
			return fmt.Errorf("SELECT without a userid succeeded")
		}
		if e := expect("errno", mysqlErrno(err), uint16(1235)); e != nil {
			return fmt.Errorf("%v (%v)", e, err)
		}
		var me *mysql.MySQLError
		errors.As(err, &me)
		if !strings.HasPrefix(me.Message, "shardwire:") {
			return fmt.Errorf("message %q does not start with 'shardwire:'", me.Message)
		}
		rows, err := query("SELECT COUNT(*) FROM compat_items WHERE userid = ?", u3)
		if err != nil {
			return err
		}
		return expectRows("after the error", rows, r(2))
	})
	step("ping", func() error { return conn.PingContext(ctx) })
	step("reconnect", func() error {
		conn.Close()
		db.Close()
		if err := connect(); err != nil {
			return err
		}
		rows, err := query("SELECT name, big FROM compat_items WHERE userid = ? AND k = 'main'", u1)
		if err != nil {
			return err
		}
		if err := expectRows("rows", rows, r(NAME, BIG_MAX)); err != nil {
			return err
		}
		// a new session starts clean on every shard: nothing of session_state
		for _, c := range []struct {
			u int64
			k string
		}{{u1, "main"}, {u3, "a"}} {
			rows, err := query("SELECT @@session.time_zone, @@session.tx_isolation, k FROM compat_items WHERE userid = ? AND k = ?", c.u, c.k)
			if err != nil {
				return err
			}
			if err := expectRows(fmt.Sprintf("new session, userid %d", c.u), rows, r("SYSTEM", "REPEATABLE-READ", c.k)); err != nil {
				return err
			}
		}
		return nil
	})
	if conn != nil {
		conn.Close()
		db.Close()
	}
	if len(failures) > 0 {
		fmt.Printf("FAILED go-sql-driver: %s\n", strings.Join(failures, " "))
		os.Exit(1)
	}
	fmt.Println("PASSED go-sql-driver")
}
