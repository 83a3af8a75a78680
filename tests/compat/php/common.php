<?php
// tests/compat/php/common.php - values and helpers shared by pdo.php and
// mysqli.php (the scenario is described in tests/compat/README.md).

const NAME = "O'Brien \"q\" back\\slash Zo\u{00eb} \u{00f1} \u{4e2d}\u{6587} \u{1F600}\u{1F389}";
const BIG_MAX = '9223372036854775807';
const BIG_MIN = '-9223372036854775808';
const AMOUNT = '12345678901234.123456';
const AMOUNT2 = '-0.000001';
const TS = '2024-02-29 23:59:58.123456';

function payload(): string {
    $s = '';
    for ($i = 0; $i < 256; $i++) $s .= chr($i);
    for ($i = 255; $i >= 0; $i--) $s .= chr($i);
    return $s;
}

function body(): string {
    $parts = [];
    for ($i = 0; $i < 32000; $i++) $parts[] = sprintf("%06d:0123456789abcdef\u{00e9}\u{2713}\u{1F600}\n", $i);
    return implode('', $parts);
}

$FAILURES = [];

// SW_COMPAT_TLS_CA=<CA file>: connect over TLS (server certificate not verified)
function tls_ca(): ?string {
    $ca = getenv('SW_COMPAT_TLS_CA');
    return $ca === false || $ca === '' ? null : $ca;
}

function tls_options(): array {
    if (tls_ca() === null) return [];
    return [PDO::MYSQL_ATTR_SSL_CA => tls_ca(), PDO::MYSQL_ATTR_SSL_VERIFY_SERVER_CERT => false];
}

// Values as the app would compare them: NULL stays null, the rest as strings
// (PHP ints for BIGINT are exact on 64-bit builds).
function norm($v) {
    if (is_array($v)) return array_map('norm', $v);
    return $v === null ? null : (string)$v;
}

function show($v): string {
    $s = json_encode($v, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES | JSON_INVALID_UTF8_SUBSTITUTE);
    return strlen($s) > 300 ? gettype($v) . ' of length ' . (is_string($v) ? strlen($v) : '?') : $s;
}

function expect(string $what, $got, $want): void {
    if ($got !== $want) {
        $extra = '';
        if (is_string($got) && is_string($want)) {
            $i = 0;
            $n = min(strlen($got), strlen($want));
            while ($i < $n && $got[$i] === $want[$i]) $i++;
            $extra = " (first difference at byte $i)";
        }
        throw new RuntimeException("$what: got " . show($got) . ', want ' . show($want) . $extra);
    }
}

function step(string $name, callable $fn): void {
    global $FAILURES;
    try {
        $fn();
        echo "ok $name\n";
    } catch (Throwable $e) {
        $FAILURES[] = $name;
        echo "FAIL $name: " . get_class($e) . ': ' . substr($e->getMessage(), 0, 2000) . "\n";
    }
}

function finish(string $label): void {
    global $FAILURES;
    if ($FAILURES) {
        echo "FAILED $label: " . implode(' ', $FAILURES) . "\n";
        exit(1);
    }
    echo "PASSED $label\n";
    exit(0);
}
