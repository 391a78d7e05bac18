#!/usr/bin/perl
# history-note.pl - append one entry to the header history of a glad stream:
#
#   recipes/history-note.pl TOOL VERSION [ARG]... < IN.msgpack > OUT.msgpack
#
# The entry is {"tool": TOOL, "version": VERSION, "args": [ARG, ...]}, the form
# every glad program appends for its own invocation (formats/glad-stream.md), so
# glad-info and glad-auroc's "pipeline:" lines show it. The recipes use it to
# record decisions taken outside the programs (tune.sh: which knobs validation
# chose and its figures). Everything after the header is copied byte for byte;
# the header's other keys and history entries keep their encoding. A stream
# without a header (a plain msgpack-numpy file) gets one. Not a msgpack library:
# it parses only the header map and refuses zstd-compressed streams.
use strict;
use warnings;

die "usage: history-note.pl TOOL VERSION [ARG]... < IN > OUT\n" if @ARGV < 2;
my ($tool, $version, @args) = @ARGV;
binmode STDIN;
binmode STDOUT;
my $buf = '';
# read enough for the header (headers are small; read until it parses)
sub fill { my $n = sysread(STDIN, my $chunk, 1 << 16); die "history-note.pl: read error: $!\n" unless defined $n; $buf .= $chunk; return $n; }
fill();
die "history-note.pl: empty input, not a glad stream\n" if $buf eq '';
die "history-note.pl: zstd-compressed stream (decompress it first)\n" if substr($buf, 0, 4) eq "\x28\xb5\x2f\xfd";

# skip one msgpack object at offset $p; returns the offset after it (or -1: need more bytes)
sub need { my ($p, $n) = @_; return $p + $n <= length($buf); }
sub skip {
    my ($p) = @_;
    return -1 unless need($p, 1);
    my $b = ord(substr($buf, $p, 1));
    my ($n, $len);
    if ($b <= 0x7f || $b >= 0xe0 || $b == 0xc0 || $b == 0xc2 || $b == 0xc3) { return $p + 1; }
    if (($b & 0xe0) == 0xa0) { $len = $b & 0x1f; return need($p, 1 + $len) ? $p + 1 + $len : -1; }
    if (($b & 0xf0) == 0x90) { return skip_n($p + 1, $b & 0x0f); }
    if (($b & 0xf0) == 0x80) { return skip_n($p + 1, 2 * ($b & 0x0f)); }
    my %fixed = (0xcc => 1, 0xcd => 2, 0xce => 4, 0xcf => 8, 0xd0 => 1, 0xd1 => 2, 0xd2 => 4, 0xd3 => 8,
                 0xca => 4, 0xcb => 8, 0xd4 => 2, 0xd5 => 3, 0xd6 => 5, 0xd7 => 9, 0xd8 => 17);
    return need($p, 1 + $fixed{$b}) ? $p + 1 + $fixed{$b} : -1 if exists $fixed{$b};
    my %var = (0xd9 => 1, 0xc4 => 1, 0xda => 2, 0xc5 => 2, 0xdb => 4, 0xc6 => 4, 0xc7 => 1, 0xc8 => 2, 0xc9 => 4);
    if (exists $var{$b}) {
        my $w = $var{$b};
        return -1 unless need($p, 1 + $w);
        $len = $w == 1 ? ord(substr($buf, $p + 1, 1)) : unpack($w == 2 ? 'n' : 'N', substr($buf, $p + 1, $w));
        $len += 1 if $b >= 0xc7 && $b <= 0xc9;   # ext: type byte
        return need($p, 1 + $w + $len) ? $p + 1 + $w + $len : -1;
    }
    if ($b == 0xdc || $b == 0xdd || $b == 0xde || $b == 0xdf) {
        my $w = ($b == 0xdc || $b == 0xde) ? 2 : 4;
        return -1 unless need($p, 1 + $w);
        $n = unpack($w == 2 ? 'n' : 'N', substr($buf, $p + 1, $w));
        $n *= 2 if $b >= 0xde;
        return skip_n($p + 1 + $w, $n);
    }
    die sprintf("history-note.pl: not a glad stream (msgpack byte 0x%02x at %d)\n", $b, $p);
}
sub skip_n { my ($p, $n) = @_; for (1 .. $n) { $p = skip($p); return -1 if $p < 0; } return $p; }
sub str_of {   # the string at $p, or undef when it is not a str/bin
    my ($p) = @_;
    my $b = ord(substr($buf, $p, 1));
    return substr($buf, $p + 1, $b & 0x1f) if ($b & 0xe0) == 0xa0;
    return substr($buf, $p + 2, ord(substr($buf, $p + 1, 1))) if $b == 0xd9 || $b == 0xc4;
    return substr($buf, $p + 3, unpack('n', substr($buf, $p + 1, 2))) if $b == 0xda || $b == 0xc5;
    return undef;
}
sub enc_str {
    my ($s) = @_;
    utf8::encode($s) if utf8::is_utf8($s);
    my $l = length $s;
    return chr(0xa0 | $l) . $s if $l < 32;
    return "\xd9" . chr($l) . $s if $l < 256;
    return "\xda" . pack('n', $l) . $s if $l < 65536;
    return "\xdb" . pack('N', $l) . $s;
}
sub enc_arr_head { my ($n) = @_; return $n < 16 ? chr(0x90 | $n) : $n < 65536 ? "\xdc" . pack('n', $n) : "\xdd" . pack('N', $n); }
sub enc_map_head { my ($n) = @_; return $n < 16 ? chr(0x80 | $n) : $n < 65536 ? "\xde" . pack('n', $n) : "\xdf" . pack('N', $n); }

my $entry = enc_map_head(3) . enc_str('tool') . enc_str($tool) . enc_str('version') . enc_str($version)
    . enc_str('args') . enc_arr_head(scalar @args) . join('', map { enc_str($_) } @args);

# parse the first map (until it is complete)
my $end;
while (($end = skip(0)) < 0) { fill() or die "history-note.pl: truncated header\n"; }
my $b0 = ord(substr($buf, 0, 1));
my ($npairs, $p);
if (($b0 & 0xf0) == 0x80) { ($npairs, $p) = ($b0 & 0x0f, 1); }
elsif ($b0 == 0xde) { ($npairs, $p) = (unpack('n', substr($buf, 1, 2)), 3); }
elsif ($b0 == 0xdf) { ($npairs, $p) = (unpack('N', substr($buf, 1, 4)), 5); }
else { die "history-note.pl: not a glad stream (the first object is not a map)\n"; }
my (@pairs, $is_header, $hist_i);
for my $i (0 .. $npairs - 1) {
    my $k = $p; my $v = skip($k); my $e = skip($v);
    my $key = str_of($k) // '';
    $is_header = 1 if $key eq 'glad';
    $hist_i = $i if $key eq 'history';
    push @pairs, [$key, substr($buf, $k, $v - $k), $v, substr($buf, $v, $e - $v)];
    $p = $e;
}
my $out;
if (!$is_header) {   # headerless stream: a new header in front of the first record
    $out = enc_map_head(2) . enc_str('glad') . "\x01" . enc_str('history') . enc_arr_head(1) . $entry;
    $end = 0;
} else {
    if (!defined $hist_i) {
        push @pairs, ['history', enc_str('history'), -1, enc_arr_head(0)];
        $hist_i = $#pairs;
    }
    my $h = $pairs[$hist_i];
    # re-count the history array and append the entry
    my $hb = $h->[3];
    my $t = ord(substr($hb, 0, 1));
    my ($n, $hl) = ($t & 0xf0) == 0x90 ? ($t & 0x0f, 1) : $t == 0xdc ? (unpack('n', substr($hb, 1, 2)), 3)
                 : $t == 0xdd ? (unpack('N', substr($hb, 1, 4)), 5) : die "history-note.pl: 'history' is not an array\n";
    $h->[3] = enc_arr_head($n + 1) . substr($hb, $hl) . $entry;
    $out = enc_map_head(scalar @pairs) . join('', map { $_->[1] . $_->[3] } @pairs);
}
print STDOUT $out, substr($buf, $end) or die "history-note.pl: write error: $!\n";
while (1) {
    my $n = sysread(STDIN, my $chunk, 1 << 20);
    die "history-note.pl: read error: $!\n" unless defined $n;
    last if $n == 0;
    print STDOUT $chunk or die "history-note.pl: write error: $!\n";
}
close STDOUT or die "history-note.pl: write error: $!\n";
