#!/usr/bin/python3
"""The long reliability run (build.ps1 -Task Reliability): crash, faults, fuzz and load with long
bounds and fresh seeds; writes the figures into docs/reliability.md between the long-run markers.
Exit 0 only if every script kept every promise.

Usage: run-long.py [--crash-seconds 150] [--fuzz-seconds 120] [--load-seconds 60] [--fault-rounds 2]
                   [--powerloss-seconds 1200] [--seed N] [--no-docs]
"""
import argparse, json, os, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
DOC = os.path.join(HERE, '..', '..', 'docs', 'reliability.md')
BEGIN, END = '<!-- long-run:begin -->', '<!-- long-run:end -->'


def run(name, args):
    run.n = getattr(run, 'n', 0) + 1   # two runs of one script must not share a summary file
    out = os.path.join(tempfile.gettempdir(), 'shuru-long-%s-%d-%d.json' % (name.split('.')[0], os.getpid(), run.n))
    cmd = ['/usr/bin/python3', os.path.join(HERE, name)] + args + ['--json', out]
    print('>', ' '.join(cmd), flush=True)
    t = time.time()
    rc = subprocess.call(cmd)
    r = json.load(open(out)) if os.path.exists(out) else {'ok': False, 'problems': ['no summary']}
    r['exit'] = rc
    r['wall_seconds'] = round(time.time() - t)
    r['command'] = 'tests/reliability/' + name + ' ' + ' '.join(args)
    return r


def invocation():
    """How this run was started, for the figures' heading: build.ps1's defaults read differently
    from a shortened run, and the heading must say which one the figures are."""
    args = ' '.join(sys.argv[1:])
    if not args:
        return 'dotnet pwsh -NoProfile -File ./build.ps1 -Task Reliability'
    return ('/usr/bin/python3 tests/reliability/run-long.py ' + args).rstrip()


def crash_row(name, r):
    return ('| %s | `%s` | %d iterations, %d kills (%d during a checkpoint), %d writes (%d FUA) + %d zero-writes + %d trims answered, '
            '%d flushes, %d checkpoints saved, verified %d times (%d booted by the engine), %d interrupted checkpoint files found complete, '
            '%d state-journal compactions seen, %d chunk files hashed (%d bad), %d blocks compared | %d blocks |') % (
        name, r['command'], r.get('iterations', 0), r.get('kills', 0), r.get('kills_in_checkpoint', 0), r.get('writes_acked', 0),
        r.get('fua_writes_acked', 0), r.get('zeroes_acked', 0), r.get('trims_acked', 0), r.get('flushes', 0), r.get('checkpoints_saved', 0),
        r.get('checkpoints_verified', 0), r.get('checkpoints_booted', 0), r.get('unreported_checkpoints_complete', 0),
        r.get('state_compactions_seen', 0), r.get('chunks_audited', 0), r.get('bad_chunks', 0), r.get('blocks_verified', 0), r.get('blocks_lost', -1))


def powerloss_row(name, r):
    if r.get('skipped'):
        return '| %s | `%s` | skipped: %s | - |' % (name, r['command'], r['skipped'])
    return ('| %s | `%s` | %d power cuts (%d torn, %d during a checkpoint), %d writes (%d FUA) + %d zero-writes + %d trims answered, %d flushes, '
            '%d checkpoints saved, verified %d times (%d interrupted ones complete, %d absent); plfs saw %d file fsyncs, %d directory fsyncs, '
            '%d syncfs (%d ignored); at the cuts %d files and %d directory entries were not durable; %d state-journal compactions seen; '
            '%d chunk files hashed, %d names without their content; %d blocks compared | %d blocks |') % (
        name, r['command'], r.get('cuts', 0), r.get('torn_cuts', 0), r.get('cuts_in_checkpoint', 0), r.get('writes_acked', 0), r.get('fua_writes_acked', 0),
        r.get('zeroes_acked', 0), r.get('trims_acked', 0), r.get('flushes', 0), r.get('checkpoints_saved', 0), r.get('checkpoints_verified', 0),
        r.get('interrupted_checkpoints_complete', 0), r.get('interrupted_checkpoints_absent', 0), r.get('fsyncs_seen', 0),
        r.get('dir_fsyncs_seen', 0), r.get('syncfs_seen', 0), r.get('syncfs_ignored', 0), r.get('files_not_synced_at_cuts', 0),
        r.get('entry_changes_not_synced_at_cuts', 0), r.get('state_compactions_seen', 0), r.get('chunks_audited', 0),
        r.get('torn_chunk_names', 0), r.get('blocks_verified', 0), r.get('blocks_lost', -1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--crash-seconds', type=int, default=150)
    ap.add_argument('--fuzz-seconds', type=int, default=120)
    ap.add_argument('--load-seconds', type=int, default=60)
    ap.add_argument('--fault-rounds', type=int, default=2)
    ap.add_argument('--powerloss-seconds', type=int, default=1200)
    ap.add_argument('--seed', type=int, default=int(time.time()) % 100000)
    ap.add_argument('--no-docs', action='store_true')
    a = ap.parse_args()
    s = str(a.seed)
    crash = run('crash.py', ['--seconds', str(a.crash_seconds), '--seed', s, '--boot-checks', '10'])
    # A 2 MiB disk: the live-state journal is compacted often, so kills also land in compactions.
    small = run('crash.py', ['--seconds', str(max(30, a.crash_seconds // 3)), '--seed', s, '--disk-mib', '2', '--boot-checks', '3'])
    faults = run('faults.py', ['--seed', s, '--rounds', str(a.fault_rounds)])
    fuzz = run('fuzz.py', ['--seconds', str(a.fuzz_seconds), '--seed', s, '--max-canary-ms', '3000'])
    # The server-wide memory bound: 60 clients stalled in every way the fuzzer knows.
    hogs = run('fuzz.py', ['--seconds', str(a.fuzz_seconds), '--seed', s, '--hogs', '60', '--max-canary-ms', '3000', '--eof-wait', '5'])
    load = run('load.py', ['--seconds', str(a.load_seconds), '--interval', '5'])
    # Power cuts (plfs): the engine's default syncfs mode, a 2 MiB disk (journal compactions under
    # cuts), and the fsync mode once the engine has it.
    # Half the cuts strict (everything not durable lost), half torn (some of it kept, at random).
    pl = [('power loss', run('powerloss.py', ['--seconds', str(a.powerloss_seconds), '--seed', s, '--cut-mode', 'mixed'])),
          ('power loss, 2 MiB disk', run('powerloss.py', ['--seconds', str(max(30, a.powerloss_seconds // 4)), '--seed', s, '--disk-mib', '2',
                                                          '--cut-mode', 'mixed']))]
    staged = os.path.join(HERE, '..', '..', 'out', 'ShuruStore')
    dlls = [os.path.join(staged, f) for f in (os.listdir(staged) if os.path.isdir(staged) else []) if f.startswith('ShuruStore') and f.endswith('.dll')]
    if any('SHURUSTORE_DURABILITY'.encode('utf-16-le') in open(d, 'rb').read() for d in dlls):   # the engine has the fsync mode
        pl.append(('power loss, fsync mode', run('powerloss.py', ['--seconds', str(max(30, a.powerloss_seconds // 2)), '--seed', s, '--durability', 'fsync',
                                                                  '--cut-mode', 'mixed'])))
    ok = all(r['exit'] == 0 and r.get('ok') for r in (crash, small, faults, fuzz, hogs, load)) and all(
        r['exit'] == 0 and r.get('ok') or r.get('skipped') for _, r in pl)
    when = time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())
    lines = [BEGIN, '',
             'Last long run: %s, seed %s, `%s` (%s).' % (when, s, invocation(), 'all promises kept' if ok else 'FAILED'),
             '',
             '| run | command | figures | data lost |', '|---|---|---|---|',
             ] + [crash_row(name, r) for name, r in (('crash', crash), ('crash, 2 MiB disk', small))] + [
             '| faults | `%s` | %d disk-full rounds (%d ENOSPC, %d EIO replies), %d state-file-full rounds, %d damaged chunks, %d bad base images, %d checks | %s |' % (
                 faults['command'], faults.get('full_rounds', 0), faults.get('enospc_replies', 0), faults.get('eio_replies', 0), faults.get('journal_rounds', 0),
                 faults.get('chunk_faults', 0), faults.get('base_faults', 0), faults.get('checks', 0), '0' if faults.get('ok') else 'see problems'),
             '| fuzz | `%s` | %d inputs on %d connections at a time (%d reached transmission replies), %d still open after EOF, %d stalled clients held throughout, %d canary operations, server RSS peak %d MiB, clean stop in %.1f s with the stalled clients connected | %s |' % (
                 fuzz['command'], fuzz.get('inputs', 0), fuzz.get('parallel', 1), fuzz.get('transmission_replies', 0), fuzz.get('still_open', 0),
                 fuzz.get('hogs', 0), fuzz.get('canary_ops', 0), fuzz.get('max_rss_mib', 0), fuzz.get('stop_seconds', 0),
                 '0 (canary)' if fuzz.get('ok') else 'see problems'),
             '| memory bound | `%s` | %d stalled clients at the start (%s), at least %d held throughout; server RSS %d MiB before them, peak %d MiB (growth %d MiB, bound 512); canary: %d operations, longest wait %d ms; Stop-ShuruNbdServer %.1f s with the stalled clients connected (grace 5 s); fuzz connections: %d still open 5 s after EOF, %d backpressured (input not yet read: waiting for payload memory) | %s |' % (
                 hogs['command'], hogs.get('hogs_at_start', 0), ', '.join('%s cut off %d times' % (k, v['cut_off']) for k, v in hogs.get('hogs_cut_off', {}).items()),
                 hogs.get('hogs_min_live', 0), hogs.get('rss_start_mib', 0), hogs.get('max_rss_mib', 0), hogs.get('rss_growth_mib', -1),
                 hogs.get('canary_ops', 0), hogs.get('canary_max_ms', -1), hogs.get('stop_cmdlet_seconds') or -1,
                 hogs.get('still_open', 0), hogs.get('backpressured', 0), '0 (canary)' if hogs.get('ok') else 'see problems'),
             '| load | `%s` | %d fio jobs x %d s: %d reads, %d writes (%d / %d MiB), %d fio errors; %d checkpoints taken during the run, %d verified | %s |' % (
                 load['command'], load.get('jobs', 0), load.get('seconds', 0), load.get('read_ios', 0), load.get('write_ios', 0), load.get('read_mib', 0),
                 load.get('write_mib', 0), load.get('fio_errors', -1), load.get('checkpoints', 0), load.get('checkpoints_verified', 0),
                 '0' if load.get('ok') else 'see problems'),
             ] + [powerloss_row(name, r) for name, r in pl] + [
             '']
    problems = [p for r in (crash, small, faults, fuzz, hogs, load) + tuple(r for _, r in pl) for p in r.get('problems', [])]
    if problems:
        lines += ['Problems:', ''] + ['- ' + p for p in problems[:20]] + ['']
    lines.append(END)
    block = '\n'.join(lines)
    print(block)
    if not a.no_docs and os.path.exists(DOC):
        doc = open(DOC).read()
        if BEGIN in doc and END in doc:
            doc = doc[:doc.index(BEGIN)] + block + doc[doc.index(END) + len(END):]
            open(DOC, 'w').write(doc)
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
