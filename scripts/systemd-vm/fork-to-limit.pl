# Run by alice in the systemd VM's user slice check: forks 30 children that sleep 120 s (off the
# ssh channel), counts the forks the kernel refused, and prints the user slice's task count.
# Perl (perl-base is in every Debian) goes on after a refused fork; a shell would give up.
my ($forked, $failed) = (0, 0);
for (1 .. 30) {
  my $pid = fork;
  if (!defined $pid) { $failed++; next }
  if (!$pid) { close STDOUT; close STDERR; sleep 120; exit }
  $forked++;
}
open my $f, "<", "/sys/fs/cgroup/user.slice/user-1000.slice/pids.current" or die "pids.current: $!";
my $current = <$f>;
chomp $current;
print "limit-marker forked $forked failed $failed current $current\n";
