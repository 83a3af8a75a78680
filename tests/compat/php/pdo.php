<?php
// tests/compat/php/pdo.php - the compatibility scenario through PDO_MYSQL.
//   php pdo.php emulated|native HOST PORT USER PASSWORD DB BASE
// emulated: PDO::ATTR_EMULATE_PREPARES on (client-side interpolation, COM_QUERY);
// native: off - PDO prepares every statement, even those without parameters.
require __DIR__ . '/common.php';

if ($argc !== 8 || !in_array($argv[1], ['emulated', 'native'], true)) {
    fwrite(STDERR, "usage: pdo.php emulated|native HOST PORT USER PASSWORD DB BASE\n");
    exit(2);
}
[, $mode, $host, $port, $user, $password, $db, $base] = $argv;
$u1 = (int)$base + 1; $u2 = (int)$base + 2; $u3 = (int)$base + 3;
$PAYLOAD = payload();
$BODY = body();
$pdo = null;
$id = null;

$connect = function () use ($mode, $host, $port, $user, $password, $db) {
    return new PDO("mysql:host=$host;port=$port;dbname=$db;charset=utf8mb4", $user, $password, [
        PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION,
        PDO::ATTR_EMULATE_PREPARES => $mode === 'emulated',
        PDO::ATTR_DEFAULT_FETCH_MODE => PDO::FETCH_NUM,
        PDO::ATTR_TIMEOUT => 10,
    ] + tls_options());
};
// prepare + execute(params as strings, as most apps do); returns the statement
$q = function (string $sql, array $params = []) use (&$pdo) {
    $st = $pdo->prepare($sql);
    $st->execute($params);
    return $st;
};
$rows = function (PDOStatement $st) { return norm($st->fetchAll()); };

step('connect', function () use (&$pdo, $connect) { $pdo = $connect(); });
if ($FAILURES) finish("php-pdo-$mode");

step('cleanup', function () use ($q, $u1, $u2, $u3) {
    foreach ([$u1, $u2, $u3] as $u) $q('DELETE FROM compat_items WHERE userid = ?', [$u]);
});
step('insert_full', function () use (&$pdo, &$id, $u1, $PAYLOAD, $BODY) {
    $st = $pdo->prepare('INSERT INTO compat_items (userid, k, name, big, amount, ts, payload, body)'
        . " VALUES (:u, 'main', :name, :big, :amount, :ts, :payload, :body)");
    $st->bindValue(':u', $u1, PDO::PARAM_INT);
    $st->bindValue(':name', NAME);
    $st->bindValue(':big', (int)BIG_MAX, PDO::PARAM_INT);
    $st->bindValue(':amount', AMOUNT);
    $st->bindValue(':ts', TS);
    $st->bindValue(':payload', $PAYLOAD, PDO::PARAM_LOB);
    $st->bindValue(':body', $BODY);
    $st->execute();
    expect('affected rows', $st->rowCount(), 1);
    $id = $pdo->lastInsertId();
    if (!((int)$id > 0)) throw new RuntimeException("insert id " . show($id) . ", want > 0");
});
step('last_insert_id', function () use ($pdo, &$id, $rows) {
    expect('LAST_INSERT_ID()', $rows($pdo->query('SELECT LAST_INSERT_ID()')), [[$id]]);
});
step('read_full', function () use ($q, $rows, &$id, $u1, $PAYLOAD, $BODY) {
    $r = $rows($q('SELECT id, name, big, amount, ts, payload, body FROM compat_items'
        . " WHERE userid = ? AND k = 'main'", [$u1]));
    expect('row count', count($r), 1);
    [$gid, $name, $big, $amount, $ts, $payload, $body] = $r[0];
    expect('id', $gid, $id);
    expect('name', $name, NAME);
    expect('big', $big, BIG_MAX);
    expect('amount', $amount, AMOUNT);
    expect('ts', $ts, TS);
    expect('payload', $payload, $PAYLOAD);
    expect('body', $body, $BODY);
});
step('nulls', function () use ($q, $rows, $u2) {
    $q('INSERT INTO compat_items (userid, k, name, big, amount, ts, payload, body)'
        . " VALUES (?, 'nulls', ?, ?, ?, ?, ?, ?)", [$u2, null, null, null, null, null, null]);
    expect('rows', $rows($q('SELECT name, big, amount, ts, payload, body FROM compat_items'
        . " WHERE userid = ? AND k = 'nulls'", [$u2])), [[null, null, null, null, null, null]]);
});
step('multi_row', function () use ($q, $u3) {
    $st = $q("INSERT INTO compat_items (userid, k, name, big) VALUES ($u3, 'a', ?, 1),"
        . " ($u3, 'b', ?, 2), ($u3, 'c', ?, 3)", ['A', 'B', 'C']);
    expect('affected rows', $st->rowCount(), 3);
});
step('update_delete', function () use ($q, $rows, $u3) {
    expect('update affected rows',
        $q("UPDATE compat_items SET name = 'B2' WHERE userid = ? AND k = 'b'", [$u3])->rowCount(), 1);
    expect('delete affected rows',
        $q("DELETE FROM compat_items WHERE userid = ? AND k = 'c'", [$u3])->rowCount(), 1);
    expect('rows', $rows($q('SELECT k, name, big FROM compat_items WHERE userid = ? ORDER BY k', [$u3])),
        [['a', 'A', '1'], ['b', 'B2', '2']]);
});
step('prepared_reuse', function () use (&$pdo, $u1, $u3) {
    $st = $pdo->prepare('SELECT k, big FROM compat_items WHERE userid = ? AND k = ?');
    foreach ([[$u3, 'a', [['a', '1']]], [$u3, 'b', [['b', '2']]], [$u1, 'main', [['main', BIG_MAX]]]]
             as [$u, $k, $want]) {
        $st->bindValue(1, $u, PDO::PARAM_INT);
        $st->bindValue(2, $k);
        $st->execute();
        expect("userid $u k $k", norm($st->fetchAll()), $want);
    }
});
step('session_state', function () use ($q, $rows, $u1, $u3) {
    // what Laravel's MySQL connector sends after connecting, more or less
    $q("SET NAMES 'utf8mb4' COLLATE 'utf8mb4_unicode_ci'");
    $q("SET time_zone = '+05:00', SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE'");
    $sql = 'SELECT @@session.time_zone, @@session.sql_mode, @@session.collation_connection, k'
        . ' FROM compat_items WHERE userid = ? AND k = ?';
    foreach ([[$u1, 'main'], [$u3, 'a'], [$u1, 'main']] as [$u, $k])
        expect("userid $u", $rows($q($sql, [$u, $k])),
            [['+05:00', 'STRICT_ALL_TABLES,NO_ZERO_DATE', 'utf8mb4_unicode_ci', $k]]);
    expect('unrouted', $rows($q('SELECT @@session.time_zone')), [['+05:00']]);
});
step('warnings', function () use ($q, $rows, $u3) {
    expect('CAST', $rows($q("SELECT CAST('12abc' AS SIGNED) FROM compat_items WHERE userid = ? AND k = 'a'", [$u3])), [['12']]);
    expect('SHOW WARNINGS', $rows($q('SHOW WARNINGS')), [['Warning', '1292', "Truncated incorrect INTEGER value: '12abc'"]]);
});
step('tx_commit', function () use (&$pdo, $q, $rows, $u1) {
    $pdo->beginTransaction();
    $q("INSERT INTO compat_items (userid, k, big, amount) VALUES (?, 'tx-commit', ?, ?)",
        [$u1, BIG_MIN, AMOUNT2]);
    expect('update affected rows', $q("UPDATE compat_items SET name = 'committed'"
        . " WHERE userid = ? AND k = 'tx-commit'", [$u1])->rowCount(), 1);
    $pdo->commit();
    expect('rows', $rows($q("SELECT name, big, amount FROM compat_items WHERE userid = ? AND k = 'tx-commit'",
        [$u1])), [['committed', BIG_MIN, AMOUNT2]]);
});
step('tx_rollback', function () use (&$pdo, $q, $rows, $u1) {
    $count = "SELECT COUNT(*) FROM compat_items WHERE userid = ? AND k = 'tx-rollback'";
    $pdo->beginTransaction();
    $q("INSERT INTO compat_items (userid, k, name) VALUES (?, 'tx-rollback', 'x')", [$u1]);
    expect('count inside the transaction', $rows($q($count, [$u1])), [['1']]);
    try {   // an error inside the transaction does not end it
        $q("INSERT INTO compat_items (userid, k, name) VALUES (?, 'main', 'dup')", [$u1]);
        throw new RuntimeException('duplicate INSERT succeeded');
    } catch (PDOException $e) {
        expect('errno inside the transaction', $e->errorInfo[1] ?? null, 1062);
    }
    expect('count after the error', $rows($q($count, [$u1])), [['1']]);
    $pdo->rollBack();
    expect('count after rollback', $rows($q($count, [$u1])), [['0']]);
});
step('duplicate_key', function () use ($q, $rows, $u1) {
    try {
        $q("INSERT INTO compat_items (userid, k, name) VALUES (?, 'main', 'dup')", [$u1]);
        throw new RuntimeException('duplicate INSERT succeeded');
    } catch (PDOException $e) {
        expect('errno', $e->errorInfo[1] ?? null, 1062);
    }
    expect('after the error', $rows($q("SELECT name FROM compat_items WHERE userid = ? AND k = 'main'",
        [$u1])), [[NAME]]);
});
step('router_error', function () use ($q, $rows, $u3) {
    try {
        $q('SELECT k FROM compat_items');
        throw new RuntimeException('SELECT without a userid succeeded');
    } catch (PDOException $e) {
        expect('errno', $e->errorInfo[1] ?? null, 1235);
        if (strpos((string)($e->errorInfo[2] ?? ''), 'shardwire:') !== 0)
            throw new RuntimeException('message ' . show($e->errorInfo[2] ?? null) . " does not start with 'shardwire:'");
    }
    expect('after the error', $rows($q('SELECT COUNT(*) FROM compat_items WHERE userid = ?', [$u3])), [['2']]);
});
step('ping', function () use ($pdo, $rows) {
    // PDO has no ping; apps check a connection with a trivial query.
    expect('SELECT 1', $rows($pdo->query('SELECT 1')), [['1']]);
});
step('reconnect', function () use (&$pdo, $connect, $q, $rows, $u1, $u3) {
    $pdo = null;
    $pdo = $connect();
    expect('rows', $rows($q("SELECT name, big FROM compat_items WHERE userid = ? AND k = 'main'", [$u1])),
        [[NAME, BIG_MAX]]);
    // a new session starts clean on every shard: nothing of session_state
    foreach ([[$u1, 'main'], [$u3, 'a']] as [$u, $k])
        expect("new session, userid $u", $rows($q('SELECT @@session.time_zone, @@session.tx_isolation, k FROM compat_items WHERE userid = ? AND k = ?', [$u, $k])),
            [['SYSTEM', 'REPEATABLE-READ', $k]]);
});
finish("php-pdo-$mode");
