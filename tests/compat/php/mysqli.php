<?php
// tests/compat/php/mysqli.php - the compatibility scenario through mysqli
// (mysqlnd): text queries with real_escape_string, and prepared statements
// (bind_param; the payload goes by send_long_data = COM_STMT_SEND_LONG_DATA).
//   php mysqli.php HOST PORT USER PASSWORD DB BASE
require __DIR__ . '/common.php';

if ($argc !== 7) {
    fwrite(STDERR, "usage: mysqli.php HOST PORT USER PASSWORD DB BASE\n");
    exit(2);
}
[, $host, $port, $user, $password, $db, $base] = $argv;
$u1 = (int)$base + 1; $u2 = (int)$base + 2; $u3 = (int)$base + 3;
$PAYLOAD = payload();
$BODY = body();
mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
$m = null;
$id = null;

$connect = function () use ($host, $port, $user, $password, $db) {
    $c = mysqli_init();
    $c->options(MYSQLI_OPT_CONNECT_TIMEOUT, 10);
    $flags = 0;
    if (tls_ca() !== null) {
        $c->ssl_set(null, null, tls_ca(), null, null);
        $flags = MYSQLI_CLIENT_SSL | MYSQLI_CLIENT_SSL_DONT_VERIFY_SERVER_CERT;
    }
    $c->real_connect($host, $user, $password, $db, (int)$port, null, $flags);
    $c->set_charset('utf8mb4');
    return $c;
};
// prepared statement: types as bind_param wants them; returns [stmt, rows|null]
$p = function (string $sql, string $types = '', array $params = []) use (&$m) {
    $st = $m->prepare($sql);
    if ($types !== '') $st->bind_param($types, ...$params);
    $st->execute();
    $res = $st->get_result();
    return [$st, $res ? norm($res->fetch_all(MYSQLI_NUM)) : null];
};
// text query
$t = function (string $sql) use (&$m) {
    $res = $m->query($sql);
    return $res instanceof mysqli_result ? norm($res->fetch_all(MYSQLI_NUM)) : null;
};

step('connect', function () use (&$m, $connect) { $m = $connect(); });
if ($FAILURES) finish('php-mysqli');

step('cleanup', function () use ($t, $u1, $u2, $u3) {
    foreach ([$u1, $u2, $u3] as $u) $t("DELETE FROM compat_items WHERE userid = $u");
});
step('insert_full', function () use (&$m, &$id, $u1, $PAYLOAD, $BODY) {
    $st = $m->prepare('INSERT INTO compat_items (userid, k, name, big, amount, ts, payload, body)'
        . " VALUES (?, 'main', ?, ?, ?, ?, ?, ?)");
    $u = $u1; $name = NAME; $big = (int)BIG_MAX; $amount = AMOUNT; $ts = TS; $null = null;
    $st->bind_param('isissbb', $u, $name, $big, $amount, $ts, $null, $null);
    // blob ('b') parameters' data goes in chunks before the execute
    foreach (str_split($PAYLOAD, 100) as $chunk) $st->send_long_data(5, $chunk);
    foreach (str_split($BODY, 65536) as $chunk) $st->send_long_data(6, $chunk);
    $st->execute();
    expect('affected rows', $st->affected_rows, 1);
    $id = (string)$st->insert_id;
    expect('mysqli insert_id', (string)$m->insert_id, $id);
    if (!((int)$id > 0)) throw new RuntimeException("insert id " . show($id) . ", want > 0");
});
step('last_insert_id', function () use ($t, &$id) {
    expect('LAST_INSERT_ID()', $t('SELECT LAST_INSERT_ID()'), [[$id]]);
});
step('read_full', function () use ($p, $t, &$id, $u1, $PAYLOAD, $BODY) {
    $sql = "SELECT id, name, big, amount, ts, payload, body FROM compat_items WHERE userid = %s AND k = 'main'";
    foreach (['prepared' => $p(sprintf($sql, '?'), 'i', [$u1])[1], 'text' => $t(sprintf($sql, $u1))]
             as $how => $r) {
        expect("$how: row count", count($r), 1);
        [$gid, $name, $big, $amount, $ts, $payload, $body] = $r[0];
        expect("$how: id", $gid, $id);
        expect("$how: name", $name, NAME);
        expect("$how: big", $big, BIG_MAX);
        expect("$how: amount", $amount, AMOUNT);
        expect("$how: ts", $ts, TS);
        expect("$how: payload", $payload, $PAYLOAD);
        expect("$how: body", $body, $BODY);
    }
});
step('nulls', function () use ($p, $t, $u2) {
    $n = null;
    $p('INSERT INTO compat_items (userid, k, name, big, amount, ts, payload, body)'
        . " VALUES (?, 'nulls', ?, ?, ?, ?, ?, ?)", 'isissss', [$u2, $n, $n, $n, $n, $n, $n]);
    expect('rows', $t("SELECT name, big, amount, ts, payload, body FROM compat_items WHERE userid = $u2"
        . " AND k = 'nulls'"), [[null, null, null, null, null, null]]);
});
step('multi_row', function () use (&$m, $u3) {
    $names = array_map([$m, 'real_escape_string'], ['A', 'B', 'C']);
    $m->query("INSERT INTO compat_items (userid, k, name, big) VALUES ($u3, 'a', '$names[0]', 1),"
        . " ($u3, 'b', '$names[1]', 2), ($u3, 'c', '$names[2]', 3)");
    expect('affected rows', $m->affected_rows, 3);
});
step('update_delete', function () use (&$m, $p, $u3) {
    [$st] = $p("UPDATE compat_items SET name = 'B2' WHERE userid = ? AND k = 'b'", 'i', [$u3]);
    expect('update affected rows', $st->affected_rows, 1);
    $m->query("DELETE FROM compat_items WHERE userid = $u3 AND k = 'c'");
    expect('delete affected rows', $m->affected_rows, 1);
    expect('rows', $p('SELECT k, name, big FROM compat_items WHERE userid = ? ORDER BY k', 'i', [$u3])[1],
        [['a', 'A', '1'], ['b', 'B2', '2']]);
});
step('prepared_reuse', function () use (&$m, $u1, $u3) {
    $st = $m->prepare('SELECT k, big FROM compat_items WHERE userid = ? AND k = ?');
    $u = 0; $k = '';
    $st->bind_param('is', $u, $k);
    foreach ([[$u3, 'a', [['a', '1']]], [$u3, 'b', [['b', '2']]], [$u1, 'main', [['main', BIG_MAX]]]]
             as [$uu, $kk, $want]) {
        $u = $uu; $k = $kk;
        $st->execute();
        expect("userid $u k $k", norm($st->get_result()->fetch_all(MYSQLI_NUM)), $want);
    }
    $st->close();
});
step('cursor_fetch', function () use (&$m, $u3) {
    // a read-only cursor: rows come one COM_STMT_FETCH at a time
    $st = $m->stmt_init();
    $st->prepare('SELECT k, name FROM compat_items WHERE userid = ? ORDER BY k');
    $st->attr_set(MYSQLI_STMT_ATTR_CURSOR_TYPE, MYSQLI_CURSOR_TYPE_READ_ONLY);
    $u = $u3;
    $st->bind_param('i', $u);
    $st->execute();
    $k = $name = null;
    $st->bind_result($k, $name);
    $got = [];
    while ($st->fetch()) $got[] = [$k, $name];
    $st->close();
    expect('rows', $got, [['a', 'A'], ['b', 'B2']]);
});
step('session_state', function () use ($t, $p, $u1, $u3) {
    $t("SET time_zone = '+05:00', SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE'");
    foreach ([[$u1, 'main'], [$u3, 'a'], [$u1, 'main']] as [$u, $k])
        expect("userid $u", $p("SELECT @@session.time_zone, @@session.sql_mode, k FROM compat_items WHERE userid = ? AND k = ?", 'is', [$u, $k])[1], [['+05:00', 'STRICT_ALL_TABLES,NO_ZERO_DATE', $k]]);
    expect('unrouted', $t('SELECT @@session.time_zone'), [['+05:00']]);
});
step('warnings', function () use (&$m, $p, $t, $u3) {
    [$st, $r] = $p("SELECT CAST('12abc' AS SIGNED) FROM compat_items WHERE userid = ? AND k = 'a'", 'i', [$u3]);
    expect('CAST', $r, [['12']]);
    expect('warning_count', $m->warning_count, 1);
    expect('SHOW WARNINGS', $t('SHOW WARNINGS'), [['Warning', '1292', "Truncated incorrect INTEGER value: '12abc'"]]);
});
step('tx_commit', function () use (&$m, $p, $u1) {
    $m->begin_transaction();
    $p("INSERT INTO compat_items (userid, k, big, amount) VALUES (?, 'tx-commit', ?, ?)", 'iis',
        [$u1, (int)BIG_MIN, AMOUNT2]);
    [$st] = $p("UPDATE compat_items SET name = 'committed' WHERE userid = ? AND k = 'tx-commit'", 'i', [$u1]);
    expect('update affected rows', $st->affected_rows, 1);
    $m->commit();
    expect('rows', $p("SELECT name, big, amount FROM compat_items WHERE userid = ? AND k = 'tx-commit'", 'i',
        [$u1])[1], [['committed', BIG_MIN, AMOUNT2]]);
});
step('tx_rollback', function () use (&$m, $t, $p, $u1) {
    $count = "SELECT COUNT(*) FROM compat_items WHERE userid = $u1 AND k = 'tx-rollback'";
    $m->begin_transaction();
    $t("INSERT INTO compat_items (userid, k, name) VALUES ($u1, 'tx-rollback', 'x')");
    expect('count inside the transaction', $t($count), [['1']]);
    try {   // an error inside the transaction does not end it
        $p("INSERT INTO compat_items (userid, k, name) VALUES (?, 'main', 'dup')", 'i', [$u1]);
        throw new RuntimeException('duplicate INSERT succeeded');
    } catch (mysqli_sql_exception $e) {
        expect('errno inside the transaction', $e->getCode(), 1062);
    }
    expect('count after the error', $t($count), [['1']]);
    $m->rollback();
    expect('count after rollback', $t($count), [['0']]);
});
step('duplicate_key', function () use ($p, $t, $u1) {
    try {
        $p("INSERT INTO compat_items (userid, k, name) VALUES (?, 'main', 'dup')", 'i', [$u1]);
        throw new RuntimeException('duplicate INSERT succeeded');
    } catch (mysqli_sql_exception $e) {
        expect('errno', $e->getCode(), 1062);
    }
    expect('after the error', $t("SELECT name FROM compat_items WHERE userid = $u1 AND k = 'main'"), [[NAME]]);
});
step('router_error', function () use ($t, $u3) {
    try {
        $t('SELECT k FROM compat_items');
        throw new RuntimeException('SELECT without a userid succeeded');
    } catch (mysqli_sql_exception $e) {
        expect('errno', $e->getCode(), 1235);
        if (strpos($e->getMessage(), 'shardwire:') !== 0)
            throw new RuntimeException('message ' . show($e->getMessage()) . " does not start with 'shardwire:'");
    }
    expect('after the error', $t("SELECT COUNT(*) FROM compat_items WHERE userid = $u3"), [['2']]);
});
step('ping', function () use (&$m) { expect('ping()', @$m->ping(), true); });
step('reconnect', function () use (&$m, $connect, $p, $u1, $u3) {
    $m->close();
    $m = $connect();
    expect('rows', $p("SELECT name, big FROM compat_items WHERE userid = ? AND k = 'main'", 'i', [$u1])[1],
        [[NAME, BIG_MAX]]);
    // a new session starts clean on every shard: nothing of session_state
    foreach ([[$u1, 'main'], [$u3, 'a']] as [$u, $k])
        expect("new session, userid $u", $p('SELECT @@session.time_zone, @@session.tx_isolation, k FROM compat_items WHERE userid = ? AND k = ?', 'is', [$u, $k])[1],
            [['SYSTEM', 'REPEATABLE-READ', $k]]);
});
finish('php-mysqli');
