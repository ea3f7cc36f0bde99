"""The power-loss file system (plfs/plfs.cpp) from Python: build, mount, control, cut, unmount."""
import hashlib, json, os, shutil, socket, subprocess, time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, 'plfs', 'plfs.cpp')


def unavailable():
    """Why FUSE cannot be used here (None when it can)."""
    if not os.path.exists('/dev/fuse'):
        return '/dev/fuse is missing (no FUSE in this kernel or container)'
    if not shutil.which('fusermount3'):
        return 'fusermount3 is missing (Debian package fuse3: tools/install-deps.sh)'
    if not os.path.exists('/usr/include/fuse3/fuse.h'):
        return 'libfuse3 headers are missing (Debian package libfuse3-dev: tools/install-deps.sh)'
    if not shutil.which('g++'):
        return 'g++ is missing'
    if os.geteuid() != 0:
        return 'needs root (mounts, seccomp listener)'
    return None


def binary():
    """Compiles plfs once per source version (cached under /tmp) and returns its path."""
    src = open(SRC, 'rb').read()
    d = os.path.join('/tmp', 'shuru-plfs-' + hashlib.sha256(src).hexdigest()[:12])
    exe = os.path.join(d, 'plfs')
    if not os.path.exists(exe):
        os.makedirs(d, exist_ok=True)
        flags = subprocess.run(['pkg-config', '--cflags', '--libs', 'fuse3'], capture_output=True, text=True, check=True).stdout.split()
        tmp = exe + '.%d' % os.getpid()
        subprocess.run(['g++', '-O2', '-std=c++17', '-o', tmp, SRC] + flags, check=True)
        os.rename(tmp, exe)
    return exe


class Plfs:
    """One mount of plfs: BACKING served at MOUNT, controlled through CTL."""

    def __init__(self, backing, mount, ctl, ignore=(), writeback=False, trace=None, log=None, cut_errors=False):
        self.backing, self.mount, self.ctl = backing, os.path.abspath(mount), ctl
        os.makedirs(backing, exist_ok=True)
        os.makedirs(mount, exist_ok=True)
        args = [binary(), 'mount', backing, mount, ctl]
        if ignore: args += ['--ignore', ','.join(ignore)]
        if writeback: args += ['--writeback']
        if cut_errors: args += ['--cut-errors']
        if trace: args += ['--trace', trace]
        self.log = open(log or os.devnull, 'a')
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith('MOUNTED'):
            self.proc.kill()
            raise RuntimeError('plfs did not mount %s: %r' % (mount, line))
        deadline = time.time() + 10
        while not os.path.ismount(mount):
            if time.time() > deadline: raise RuntimeError('plfs mount did not appear at ' + mount)
            time.sleep(0.01)

    def request(self, cmd, timeout=600):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(timeout)
        s.connect(self.ctl)
        try:
            s.sendall((cmd + '\n').encode())
            return json.loads(s.makefile().readline())
        finally:
            s.close()

    def stats(self):
        return self.request('stats')

    def cut(self, torn_seed=None):
        """The power loss: from now on every request fails; the backing holds only what was durable
        (torn_seed: plus, chosen with that seed, a prefix of the unsynced entry changes and some of
        the unsynced data)."""
        return self.request('cut' if torn_seed is None else 'cut torn %d' % torn_seed)

    def arm(self, n, torn_seed=None):
        """The power fails as the n-th durability call (fsync, directory fsync, syncfs) from now arrives."""
        return self.request('arm %d' % n + ('' if torn_seed is None else ' torn %d' % torn_seed))

    def thaw(self):
        """After the cut, requests held since (the machine is off) fail with EIO: call it once the
        server is killed, so that it can exit and the file system unmount."""
        try:
            return self.request('thaw', timeout=10)
        except OSError:
            return None

    def dead(self):
        return self.stats()['dead']

    def runner(self):
        """Command prefix whose syncfs/sync calls the model sees (seccomp user notification)."""
        return [binary(), 'run', self.ctl, self.mount, '--']

    def mounted(self):
        with open('/proc/mounts') as f:
            return any(l.split()[1] == self.mount for l in f)

    def unmount(self):
        """Unmounts and waits for the daemon; returns its exit status (negative: killed by a signal)."""
        if self.proc.poll() is None: self.thaw()
        for attempt in range(100):
            if not self.mounted(): break
            if subprocess.run(['fusermount3', '-u', self.mount], capture_output=True).returncode == 0: break
            time.sleep(0.05)
        if self.mounted():
            subprocess.run(['umount', '-l', self.mount])
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        return self.proc.returncode
