#!/usr/bin/perl
# tests/compat/perl/scenario.pl - the compatibility scenario (see
# tests/compat/README.md) through DBI + DBD::MariaDB (begin_work switches
# autocommit off and on).
#   perl scenario.pl clientprep|serverprep HOST PORT USER PASSWORD DB BASE
# clientprep: client-side placeholders (DBD::MariaDB's default, COM_QUERY);
# serverprep: mariadb_server_prepare=1 - libmariadb's mysql_stmt_* API
# (COM_STMT_PREPARE/EXECUTE; parameter types only on the first execute).
use strict;
use warnings;
use utf8;
use DBI qw(:sql_types);

binmode STDOUT, ':encoding(UTF-8)';
$| = 1;

my $NAME = "O'Brien \"q\" back\\slash Zo\x{eb} \x{f1} \x{4e2d}\x{6587} \x{1F600}\x{1F389}";
my $BIG_MAX = '9223372036854775807';
my $BIG_MIN = '-9223372036854775808';
my $AMOUNT = '12345678901234.123456';
my $AMOUNT2 = '-0.000001';
my $TS = '2024-02-29 23:59:58.123456';
my $PAYLOAD = join('', map { chr } 0 .. 255, reverse 0 .. 255);
my $BODY = join('', map { sprintf("%06d:0123456789abcdef\x{e9}\x{2713}\x{1F600}\n", $_) } 0 .. 31999);

my @failures;

sub show {
    my ($v) = @_;
    return 'undef' unless defined $v;
    return ref($v) ? '[' . join(', ', map { show($_) } @$v) . ']' : "'$v'" if length($v) <= 300 || ref($v);
    return 'string of length ' . length($v);
}

sub same {
    my ($a, $b) = @_;
    return !defined($b) if !defined $a;
    return 0 if !defined $b;
    if (ref $a || ref $b) {
        return 0 unless ref $a && ref $b && @$a == @$b;
        for my $i (0 .. $#$a) { return 0 unless same($a->[$i], $b->[$i]) }
        return 1;
    }
    return $a eq $b;
}

sub expect {
    my ($what, $got, $want) = @_;
    return if same($got, $want);
    my $extra = '';
    if (defined $got && defined $want && !ref $got && !ref $want) {
        my $i = 0;
        $i++ while $i < length($got) && $i < length($want) && substr($got, $i, 1) eq substr($want, $i, 1);
        $extra = " (first difference at character $i)";
    }
    die "$what: got " . show($got) . ', want ' . show($want) . "$extra\n";
}

sub step {
    my ($name, $fn) = @_;
    if (eval { $fn->(); 1 }) {
        print "ok $name\n";
    } else {
        my $e = $@ || 'unknown error';
        chomp $e;
        push @failures, $name;
        print "FAIL $name: " . substr($e, 0, 2000) . "\n";
    }
}

die "usage: scenario.pl clientprep|serverprep HOST PORT USER PASSWORD DB BASE\n"
    unless @ARGV == 7 && $ARGV[0] =~ /^(clientprep|serverprep)$/;
my ($mode, $host, $port, $user, $password, $db, $base) = @ARGV;
my ($u1, $u2, $u3) = ($base + 1, $base + 2, $base + 3);
my $dbh;
my $id;

# SW_COMPAT_TLS_CA=<CA file>: over TLS (server certificate not verified)
my $tls = $ENV{SW_COMPAT_TLS_CA} ? ";mariadb_ssl=1;mariadb_ssl_ca_file=$ENV{SW_COMPAT_TLS_CA}" : '';
$tls .= ';mariadb_server_prepare=1' if $mode eq 'serverprep';

sub connect_db {
    return DBI->connect("DBI:MariaDB:database=$db;host=$host;port=$port;mariadb_connect_timeout=10$tls",
                        $user, $password, { RaiseError => 1, PrintError => 0, AutoCommit => 1 });
}
sub rows { my ($sql, @p) = @_; return $dbh->selectall_arrayref($sql, undef, @p) }

step('connect', sub { $dbh = connect_db() });
if (@failures) { print "FAILED perl-dbd-mariadb-$mode: connect\n"; exit 1 }

step('cleanup', sub { $dbh->do('DELETE FROM compat_items WHERE userid = ?', undef, $_) for ($u1, $u2, $u3) });
step('insert_full', sub {
    my $sth = $dbh->prepare('INSERT INTO compat_items (userid, k, name, big, amount, ts, payload, body)'
                            . " VALUES (?, 'main', ?, ?, ?, ?, ?, ?)");
    $sth->bind_param(1, $u1, SQL_BIGINT);
    $sth->bind_param(2, $NAME);
    $sth->bind_param(3, $BIG_MAX, SQL_BIGINT);
    $sth->bind_param(4, $AMOUNT, SQL_DECIMAL);
    $sth->bind_param(5, $TS);
    $sth->bind_param(6, $PAYLOAD, SQL_BLOB);
    $sth->bind_param(7, $BODY);
    my $n = $sth->execute;
    expect('affected rows', $n, 1);
    $id = $dbh->last_insert_id(undef, undef, 'compat_items', 'id');
    expect('mariadb_insertid', $sth->{mariadb_insertid}, $id);
    die "insert id " . show($id) . ", want > 0\n" unless defined $id && $id > 0;
});
step('last_insert_id', sub { expect('LAST_INSERT_ID()', rows('SELECT LAST_INSERT_ID()'), [[$id]]) });
step('read_full', sub {
    my $r = rows("SELECT id, name, big, amount, ts, payload, body FROM compat_items WHERE userid = ? AND k = 'main'",
                 $u1);
    expect('row count', scalar(@$r), 1);
    my ($gid, $name, $big, $amount, $ts, $payload, $body) = @{ $r->[0] };
    expect('id', $gid, $id);
    expect('name', $name, $NAME);
    expect('big', $big, $BIG_MAX);
    expect('amount', $amount, $AMOUNT);
    expect('ts', $ts, $TS);
    expect('payload', $payload, $PAYLOAD);
    expect('body', $body, $BODY);
});
step('nulls', sub {
    $dbh->do("INSERT INTO compat_items (userid, k, name, big, amount, ts, payload, body)"
             . " VALUES (?, 'nulls', ?, ?, ?, ?, ?, ?)", undef, $u2, (undef) x 6);
    expect('rows', rows("SELECT name, big, amount, ts, payload, body FROM compat_items WHERE userid = ? AND k = 'nulls'",
                        $u2), [[(undef) x 6]]);
});
step('multi_row', sub {
    my $n = $dbh->do("INSERT INTO compat_items (userid, k, name, big) VALUES ($u3, 'a', ?, 1),"
                     . " ($u3, 'b', ?, 2), ($u3, 'c', ?, 3)", undef, 'A', 'B', 'C');
    expect('affected rows', $n, 3);
});
step('update_delete', sub {
    expect('update affected rows', $dbh->do("UPDATE compat_items SET name = 'B2' WHERE userid = ? AND k = 'b'",
                                            undef, $u3), 1);
    expect('delete affected rows', $dbh->do("DELETE FROM compat_items WHERE userid = ? AND k = 'c'", undef, $u3), 1);
    expect('rows', rows('SELECT k, name, big FROM compat_items WHERE userid = ? ORDER BY k', $u3),
           [['a', 'A', '1'], ['b', 'B2', '2']]);
});
step('prepared_reuse', sub {
    my $sth = $dbh->prepare('SELECT k, big FROM compat_items WHERE userid = ? AND k = ?');
    for my $c ([$u3, 'a', [['a', '1']]], [$u3, 'b', [['b', '2']]], [$u1, 'main', [['main', $BIG_MAX]]]) {
        $sth->execute($c->[0], $c->[1]);
        expect("userid $c->[0] k $c->[1]", $sth->fetchall_arrayref, $c->[2]);
    }
});
step('session_state', sub {
    $dbh->do(q{SET time_zone = '+05:00', SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE'});
    for my $c ([$u1, 'main'], [$u3, 'a'], [$u1, 'main']) {
        expect("userid $c->[0]", rows(q{SELECT @@session.time_zone, @@session.sql_mode, k FROM compat_items WHERE userid = ? AND k = ?}, @$c), [['+05:00', 'STRICT_ALL_TABLES,NO_ZERO_DATE', $c->[1]]]);
    }
    expect('unrouted', rows('SELECT @@session.time_zone'), [['+05:00']]);
});
step('warnings', sub {
    expect('CAST', rows(q{SELECT CAST('12abc' AS SIGNED) FROM compat_items WHERE userid = ? AND k = 'a'}, $u3), [['12']]);
    expect('SHOW WARNINGS', rows('SHOW WARNINGS'), [['Warning', '1292', q{Truncated incorrect INTEGER value: '12abc'}]]);
});
step('tx_commit', sub {
    $dbh->begin_work;
    $dbh->do("INSERT INTO compat_items (userid, k, big, amount) VALUES (?, 'tx-commit', ?, ?)", undef,
             $u1, $BIG_MIN, $AMOUNT2);
    expect('update affected rows',
           $dbh->do("UPDATE compat_items SET name = 'committed' WHERE userid = ? AND k = 'tx-commit'", undef, $u1), 1);
    $dbh->commit;
    expect('rows', rows("SELECT name, big, amount FROM compat_items WHERE userid = ? AND k = 'tx-commit'", $u1),
           [['committed', $BIG_MIN, $AMOUNT2]]);
});
step('tx_rollback', sub {
    my $count = "SELECT COUNT(*) FROM compat_items WHERE userid = ? AND k = 'tx-rollback'";
    $dbh->begin_work;
    $dbh->do("INSERT INTO compat_items (userid, k, name) VALUES (?, 'tx-rollback', 'x')", undef, $u1);
    expect('count inside the transaction', rows($count, $u1), [['1']]);
    # an error inside the transaction does not end it
    my $ok = eval { $dbh->do(q{INSERT INTO compat_items (userid, k, name) VALUES (?, 'main', 'dup')}, undef, $u1); 1 };
    die "duplicate INSERT succeeded\n" if $ok;
    expect('errno inside the transaction', $dbh->err, 1062);
    expect('count after the error', rows($count, $u1), [['1']]);
    $dbh->rollback;
    expect('count after rollback', rows($count, $u1), [['0']]);
});
step('duplicate_key', sub {
    my $ok = eval { $dbh->do("INSERT INTO compat_items (userid, k, name) VALUES (?, 'main', 'dup')", undef, $u1); 1 };
    die "duplicate INSERT succeeded\n" if $ok;
    expect('errno', $dbh->err, 1062);
    expect('after the error', rows("SELECT name FROM compat_items WHERE userid = ? AND k = 'main'", $u1), [[$NAME]]);
});
step('router_error', sub {
    my $ok = eval { rows('SELECT k FROM compat_items'); 1 };
    die "SELECT without a userid succeeded\n" if $ok;
    expect('errno', $dbh->err, 1235);
    die "message '" . $dbh->errstr . "' does not start with 'shardwire:'\n" unless $dbh->errstr =~ /^shardwire:/;
    expect('after the error', rows('SELECT COUNT(*) FROM compat_items WHERE userid = ?', $u3), [['2']]);
});
step('ping', sub { die "ping failed\n" unless $dbh->ping });
step('reconnect', sub {
    $dbh->disconnect;
    $dbh = connect_db();
    expect('rows', rows("SELECT name, big FROM compat_items WHERE userid = ? AND k = 'main'", $u1),
           [[$NAME, $BIG_MAX]]);
    # a new session starts clean on every shard: nothing of session_state
    for my $c ([$u1, 'main'], [$u3, 'a']) {
        expect("new session, userid $c->[0]", rows(q{SELECT @@session.time_zone, @@session.tx_isolation, k FROM compat_items WHERE userid = ? AND k = ?}, @$c), [['SYSTEM', 'REPEATABLE-READ', $c->[1]]]);
    }
    $dbh->disconnect;
});
if (@failures) { print "FAILED perl-dbd-mariadb-$mode: @failures\n"; exit 1 }
print "PASSED perl-dbd-mariadb-$mode\n";
exit 0;
