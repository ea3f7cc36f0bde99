// plfs: a power-loss file system for the reliability suite (docs/reliability.md, "Power loss").
//
// A FUSE pass-through over a backing directory that keeps its own model of what is durable:
//   * file data and size: durable when the file is fsynced (fsync or fdatasync on any descriptor);
//     before that, the durable content is what it was at its last fsync (empty for a new file);
//   * directory entries (create, mkdir, link, rename, unlink, rmdir): durable when that directory
//     is fsynced; a rename is durable in its source directory and its target directory separately;
//   * syncfs/sync of the server process: reported by `plfs run` (seccomp user notification, the
//     call is held until the model has recorded it), then everything is durable.
// `cut` on the control socket is the power loss: from that instant every request fails with EIO,
// and the backing directory is rebuilt to hold exactly the durable state (files whose only durable
// name was unlinked or renamed over are kept aside in a limbo directory until then).
//
//   plfs mount BACKING MOUNTPOINT CTLSOCK [--ignore fsync,fsyncdir,syncfs] [--cut-errors] [--writeback] [--trace FILE]
//   plfs run CTLSOCK MOUNTPOINT -- COMMAND ARGS...
//
// Control socket, one line per request: ping | stats | commit | syncfs | cut | cut torn SEED | thaw |
//   arm N [torn SEED] (cut as the N-th durability call from now arrives) | lastcut  (JSON replies).
// Written for this project; ideas from Jepsen's LazyFS and ALICE (no code taken).
#define FUSE_USE_VERSION 31
#include <fuse3/fuse.h>
#include <fuse3/fuse_lowlevel.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <condition_variable>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

static const uint64_t BLK = 4096;

struct Node {
    bool dir = false;
    mode_t mode = 0644;
    int vlinks = 0, dlinks = 0;                        // volatile names, durable names
    int mrefs = 0;                                     // unsynced entry changes naming it (torn cuts may keep them)
    std::vector<std::pair<ino_t, std::string>> names;  // volatile (parent, name)
    std::string limbo;                                 // where it is kept while only a durable name refers to it
    // files: durable content = current content cut to dsize with saved blocks laid over it
    bool dirty = false;
    off_t dsize = 0;
    std::map<uint64_t, std::string> saved;
    // directories
    std::unordered_map<std::string, ino_t> vent, dent;
    std::unordered_set<std::string> pending;
};

static std::mutex g;
static std::string B, LIMBO, MNT;
static ino_t ROOT;
static std::unordered_map<ino_t, Node> nodes;
static std::unordered_set<ino_t> dirty_files, pending_dirs;
static bool dead = false;
// Entry changes not yet made durable, in the order they happened: a torn cut keeps a prefix of
// them (metadata is journalled in order), while the data of unsynced files is kept block by block.
struct MetaOp { ino_t dir; std::string name; ino_t target; uint64_t group; };
static std::vector<MetaOp> mlog;
static uint64_t op_group;  // one per operation: a rename's two entry changes are kept together or not at all
static bool ign_fsync = false, ign_fsyncdir = false, ign_syncfs = false, writeback = false;
static FILE *tracef = nullptr;
static std::map<std::string, long> ops;  // high-level operations and durability events
static long raw[64];                     // FUSE opcodes as the kernel sent them
static unsigned cap_capable = 0, cap_want = 0;
static long untracked = 0;

static const char *opname(unsigned op) {
    static const char *n[] = {
        nullptr, "LOOKUP", "FORGET", "GETATTR", "SETATTR", "READLINK", "SYMLINK", nullptr, "MKNOD", "MKDIR",
        "UNLINK", "RMDIR", "RENAME", "LINK", "OPEN", "READ", "WRITE", "STATFS", "RELEASE", nullptr,
        "FSYNC", "SETXATTR", "GETXATTR", "LISTXATTR", "REMOVEXATTR", "FLUSH", "INIT", "OPENDIR", "READDIR", "RELEASEDIR",
        "FSYNCDIR", "GETLK", "SETLK", "SETLKW", "ACCESS", "CREATE", "INTERRUPT", "BMAP", "DESTROY", "IOCTL",
        "POLL", "NOTIFY_REPLY", "BATCH_FORGET", "FALLOCATE", "READDIRPLUS", "RENAME2", "LSEEK", "COPY_FILE_RANGE", "SETUPMAPPING", "REMOVEMAPPING",
        "SYNCFS", "TMPFILE", "STATX"};
    return op < sizeof n / sizeof *n && n[op] ? n[op] : nullptr;
}

static void trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void trace(const char *fmt, ...) {
    if (!tracef) return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    fprintf(tracef, "%lld.%09ld ", (long long)ts.tv_sec, ts.tv_nsec);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(tracef, fmt, ap);
    va_end(ap);
    fputc('\n', tracef);
    fflush(tracef);
}

static std::string bp(const char *path) { return B + path; }

static void split(const char *path, std::string &parent, std::string &name) {
    std::string p(path);
    size_t s = p.rfind('/');
    parent = s == 0 ? "/" : p.substr(0, s);
    name = p.substr(s + 1);
}

static ino_t ino_of(const std::string &backing) {
    struct stat st;
    return lstat(backing.c_str(), &st) == 0 ? st.st_ino : 0;
}

static Node *find(ino_t ino) {
    auto it = nodes.find(ino);
    if (it == nodes.end()) { untracked++; return nullptr; }
    return &it->second;
}

// Backing path of a directory node (its one volatile name) or file node (first name, else limbo).
static std::string where(ino_t ino) {
    if (ino == ROOT) return B;
    Node &n = nodes[ino];
    if (n.names.empty()) return n.limbo;
    return where(n.names[0].first) + "/" + n.names[0].second;
}

static void entry_changed(ino_t dir, const std::string &name) {
    Node *d = find(dir);
    if (!d) return;
    d->pending.insert(name);
    pending_dirs.insert(dir);
    auto v = d->vent.find(name);
    ino_t target = v == d->vent.end() ? 0 : v->second;
    mlog.push_back({dir, name, target, op_group});
    if (target) if (Node *t = find(target)) t->mrefs++;
}

// Armed cut: the power fails as the N-th durability call (fsync, directory fsync, syncfs) from
// now arrives, before it takes effect: the states just before each sync point, where a wrong
// order of writes and syncs shows (in the spirit of ALICE and CrashMonkey).
static long arm_left = 0;
static bool arm_torn = false;
static uint64_t arm_seed = 0;
static std::string last_cut;
static std::string cut(bool torn, uint64_t seed);
static bool armed_cut(const char *what) {
    if (arm_left <= 0 || --arm_left > 0) return false;
    ops[std::string("armed_cut_at_") + what]++;
    last_cut = cut(arm_torn, arm_seed);
    return true;
}

static bool kept_for_cut(const Node &n) { return n.dlinks > 0 || n.mrefs > 0; }

static void forget_if_gone(ino_t ino) {
    auto it = nodes.find(ino);
    if (it == nodes.end()) return;
    Node &n = it->second;
    if (n.vlinks > 0 || kept_for_cut(n)) return;
    if (!n.limbo.empty()) {
        if (n.dir) rmdir(n.limbo.c_str()); else unlink(n.limbo.c_str());
    }
    dirty_files.erase(ino);
    pending_dirs.erase(ino);
    nodes.erase(it);
}

static void drop_dlink(ino_t ino) {
    Node *n = find(ino);
    if (!n) return;
    n->dlinks--;
    forget_if_gone(ino);
}

// fsync of a directory: its current entries become its durable ones.
static void apply_pending(ino_t dino) {
    Node *d = find(dino);
    if (!d) return;
    std::vector<ino_t> dropped;
    long changed = 0;
    for (auto &name : d->pending) {
        auto v = d->vent.find(name);
        auto o = d->dent.find(name);
        ino_t nw = v == d->vent.end() ? 0 : v->second, old = o == d->dent.end() ? 0 : o->second;
        if (nw == old) continue;
        changed++;
        if (old) { d->dent.erase(o); dropped.push_back(old); }
        if (nw) { d->dent[name] = nw; if (Node *c = find(nw)) c->dlinks++; }
    }
    d->pending.clear();
    pending_dirs.erase(dino);
    ops["entries_made_durable"] += changed;
    std::vector<ino_t> unref;
    size_t w = 0;
    for (size_t r = 0; r < mlog.size(); r++) {
        if (mlog[r].dir == dino) { if (mlog[r].target) unref.push_back(mlog[r].target); }
        else mlog[w++] = std::move(mlog[r]);
    }
    mlog.resize(w);
    for (ino_t i : unref) if (Node *t = find(i)) t->mrefs--;
    for (ino_t i : dropped) drop_dlink(i);
    for (ino_t i : unref) forget_if_gone(i);
}

static void make_clean(ino_t ino) {
    Node *n = find(ino);
    if (!n) return;
    n->dirty = false;
    n->saved.clear();
    dirty_files.erase(ino);
}

static void commit_all() {
    std::vector<ino_t> f(dirty_files.begin(), dirty_files.end()), d(pending_dirs.begin(), pending_dirs.end());
    for (ino_t i : f) make_clean(i);
    for (ino_t i : d) apply_pending(i);
}

// Before a change of [off, off+len) (or of the size): keep the durable bytes it would overwrite.
static void save_range(ino_t ino, int fd, off_t off, off_t len) {
    Node *n = find(ino);
    if (!n) return;
    if (!n->dirty) {
        struct stat st;
        if (fstat(fd, &st) != 0) return;
        n->dirty = true;
        n->dsize = st.st_size;
        dirty_files.insert(ino);
    }
    off_t end = std::min<off_t>(off + len, n->dsize);
    for (uint64_t b = off / BLK; (off_t)(b * BLK) < end; b++) {
        if (n->saved.count(b)) continue;
        off_t at = b * BLK;
        size_t want = std::min<off_t>(BLK, n->dsize - at);
        std::string data(want, '\0');
        ssize_t got = pread(fd, &data[0], want, at);
        if (got < 0) got = 0;
        data.resize(got);
        data.resize(want, '\0');
        n->saved[b] = data;
    }
}

static void new_node(ino_t ino, bool dir, mode_t mode, ino_t parent, const std::string &name) {
    Node n;
    n.dir = dir;
    n.mode = mode & 07777;
    n.vlinks = 1;
    n.names.push_back({parent, name});
    if (!dir) { n.dirty = true; n.dsize = 0; }  // durable content: nothing yet
    dirty_files.erase(ino);                      // a reused inode number starts afresh
    pending_dirs.erase(ino);
    nodes[ino] = std::move(n);
    if (!dir) dirty_files.insert(ino);
    Node *p = find(parent);
    if (p) p->vent[name] = ino;
    entry_changed(parent, name);
}

// A volatile name went away; a node still durably named elsewhere moves to limbo first (caller).
static void name_removed(ino_t ino, ino_t parent, const std::string &name) {
    Node *n = find(ino);
    if (!n) return;
    for (auto it = n->names.begin(); it != n->names.end(); ++it)
        if (it->first == parent && it->second == name) { n->names.erase(it); break; }
    n->vlinks--;
    forget_if_gone(ino);
}

static std::string limbo_path(ino_t ino) { return LIMBO + "/" + std::to_string(ino); }

// ---------------------------------------------------------------------------------------------
struct FH { int fd; ino_t ino; };
// After the cut nothing reaches the disk. By default a request then never returns (the machine
// is off: the server is killed with its calls in flight); with --cut-errors it fails with EIO, as
// on a disk that failed, which shows what the server does with a failed fsync.
static bool cut_errors = false, thawed = false;
static std::mutex thaw_m;
static std::condition_variable thaw_cv;
static int after_cut(std::unique_lock<std::mutex> &lk) {
    if (!cut_errors) {
        lk.unlock();
        std::unique_lock<std::mutex> t(thaw_m);
        thaw_cv.wait(t, [] { return thawed; });
    }
    return -EIO;
}
#define DEAD_CHECK() do { if (dead) return after_cut(lk); } while (0)
#define LOCK() std::unique_lock<std::mutex> lk(g); DEAD_CHECK(); op_group++
#define COUNT(x) ops[x]++

static FH *fh(struct fuse_file_info *fi) { return (FH *)(uintptr_t)fi->fh; }

static void *op_init(struct fuse_conn_info *conn, struct fuse_config *cfg) {
    cfg->use_ino = 1;
    cfg->hard_remove = 1;
    cfg->nullpath_ok = 1;
    cfg->entry_timeout = 1;
    cfg->attr_timeout = 1;
    cfg->negative_timeout = 0;
    cap_capable = conn->capable;
    if (writeback) conn->want |= FUSE_CAP_WRITEBACK_CACHE;
    else conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
    cap_want = conn->want;
    return nullptr;
}

static int op_getattr(const char *path, struct stat *st, struct fuse_file_info *fi) {
    LOCK();
    COUNT("getattr");
    int r = fi ? fstat(fh(fi)->fd, st) : lstat(bp(path).c_str(), st);
    return r == 0 ? 0 : -errno;
}

static int op_readlink(const char *path, char *buf, size_t size) {
    LOCK();
    ssize_t n = readlink(bp(path).c_str(), buf, size - 1);
    if (n < 0) return -errno;
    buf[n] = 0;
    return 0;
}

static int op_opendir(const char *path, struct fuse_file_info *fi) {
    LOCK();
    COUNT("opendir");
    DIR *d = opendir(bp(path).c_str());
    if (!d) return -errno;
    fi->fh = (uintptr_t)d;
    return 0;
}

static int op_readdir(const char *, void *buf, fuse_fill_dir_t filler, off_t, struct fuse_file_info *fi,
                      enum fuse_readdir_flags) {
    LOCK();
    COUNT("readdir");
    DIR *d = (DIR *)(uintptr_t)fi->fh;
    rewinddir(d);
    while (struct dirent *e = readdir(d)) {
        struct stat st;
        memset(&st, 0, sizeof st);
        st.st_ino = e->d_ino;
        st.st_mode = DTTOIF(e->d_type);
        if (filler(buf, e->d_name, &st, 0, (enum fuse_fill_dir_flags)0)) break;
    }
    return 0;
}

static int op_releasedir(const char *, struct fuse_file_info *fi) {
    std::lock_guard<std::mutex> lk(g);
    closedir((DIR *)(uintptr_t)fi->fh);
    return 0;
}

static int op_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi) {
    LOCK();
    COUNT(datasync ? "fsyncdir_datasync" : "fsyncdir");
    struct stat st;
    if (fstat(dirfd((DIR *)(uintptr_t)fi->fh), &st) != 0) return -errno;
    if (armed_cut("fsyncdir")) return after_cut(lk);
    trace("fsyncdir %s ino=%lu datasync=%d%s", path ? path : "?", (unsigned long)st.st_ino, datasync, ign_fsyncdir ? " IGNORED" : "");
    if (ign_fsyncdir) { COUNT("fsyncdir_ignored"); return 0; }
    apply_pending(st.st_ino);
    return 0;
}

static int op_mkdir(const char *path, mode_t mode) {
    LOCK();
    COUNT("mkdir");
    std::string b = bp(path);
    if (mkdir(b.c_str(), mode) != 0) return -errno;
    std::string par, name;
    split(path, par, name);
    trace("mkdir %s", path);
    new_node(ino_of(b), true, mode, ino_of(bp(par.c_str())), name);
    return 0;
}

static int remove_name(const char *path, bool dir) {
    std::string b = bp(path), par, name;
    split(path, par, name);
    ino_t ino = ino_of(b), pino = ino_of(bp(par.c_str()));
    if (!ino) return -errno;
    Node *n = find(ino);
    int r;
    if (n && n->vlinks == 1 && kept_for_cut(*n)) {  // (perhaps) durably named: keep its content for a cut
        if (dir) {
            // rmdir semantics first: refuse a non-empty directory
            DIR *d = opendir(b.c_str());
            if (!d) return -errno;
            int count = 0;
            while (struct dirent *e = readdir(d)) if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) count++;
            closedir(d);
            if (count) return -ENOTEMPTY;
        }
        n->limbo = limbo_path(ino);
        r = rename(b.c_str(), n->limbo.c_str());
    } else r = dir ? rmdir(b.c_str()) : unlink(b.c_str());
    if (r != 0) return -errno;
    if (Node *p = find(pino)) p->vent.erase(name);
    entry_changed(pino, name);
    name_removed(ino, pino, name);
    return 0;
}

static int op_unlink(const char *path) { LOCK(); COUNT("unlink"); trace("unlink %s", path); return remove_name(path, false); }
static int op_rmdir(const char *path) { LOCK(); COUNT("rmdir"); trace("rmdir %s", path); return remove_name(path, true); }

static int op_rename(const char *from, const char *to, unsigned int flags) {
    LOCK();
    COUNT(flags & RENAME_NOREPLACE ? "rename_noreplace" : "rename");
    trace("rename %s -> %s flags=%u", from, to, flags);
    if (flags & ~RENAME_NOREPLACE) return -EINVAL;
    std::string bf = bp(from), bt = bp(to), fpar, fname, tpar, tname;
    split(from, fpar, fname);
    split(to, tpar, tname);
    ino_t src = ino_of(bf);
    if (!src) return -errno;
    ino_t dst = ino_of(bt);
    ino_t fp = ino_of(bp(fpar.c_str())), tp = ino_of(bp(tpar.c_str()));
    if (dst && (flags & RENAME_NOREPLACE)) return -EEXIST;
    if (dst == src) return syscall(SYS_renameat2, AT_FDCWD, bf.c_str(), AT_FDCWD, bt.c_str(), flags) == 0 ? 0 : -errno;
    Node *d = dst ? find(dst) : nullptr;
    std::string kept;
    if (d && d->vlinks == 1 && kept_for_cut(*d)) {  // the replaced file keeps its durable name until a cut
        kept = limbo_path(dst);
        if ((d->dir ? rename(bt.c_str(), kept.c_str()) : link(bt.c_str(), kept.c_str())) != 0) return -errno;
    }
    if (syscall(SYS_renameat2, AT_FDCWD, bf.c_str(), AT_FDCWD, bt.c_str(), flags) != 0) {
        int e = errno;
        if (!kept.empty()) { if (d->dir) rename(kept.c_str(), bt.c_str()); else unlink(kept.c_str()); }
        return -e;
    }
    if (!kept.empty()) d->limbo = kept;
    if (Node *p = find(fp)) p->vent.erase(fname);
    entry_changed(fp, fname);
    if (Node *p = find(tp)) p->vent[tname] = src;
    entry_changed(tp, tname);
    if (Node *s = find(src))
        for (auto &nm : s->names) if (nm.first == fp && nm.second == fname) { nm = {tp, tname}; break; }
    if (dst) name_removed(dst, tp, tname);
    return 0;
}

static int op_link(const char *from, const char *to) {
    LOCK();
    COUNT("link");
    trace("link %s -> %s", from, to);
    std::string bf = bp(from), bt = bp(to), par, name;
    if (link(bf.c_str(), bt.c_str()) != 0) return -errno;
    split(to, par, name);
    ino_t ino = ino_of(bt), pino = ino_of(bp(par.c_str()));
    if (Node *n = find(ino)) { n->vlinks++; n->names.push_back({pino, name}); }
    if (Node *p = find(pino)) p->vent[name] = ino;
    entry_changed(pino, name);
    return 0;
}

static int open_backing(const char *path, struct fuse_file_info *fi, bool create, mode_t mode) {
    std::string b = bp(path);
    int flags = fi->flags & ~(O_APPEND | O_TRUNC);  // the kernel gives the offsets; truncation is modelled first
    if ((flags & O_ACCMODE) == O_WRONLY) flags = (flags & ~O_ACCMODE) | O_RDWR;  // to save what a write replaces
    bool existed = access(b.c_str(), F_OK) == 0;
    int fd = open(b.c_str(), flags | (create ? O_CREAT : 0), mode);
    if (fd < 0) return -errno;
    struct stat st;
    fstat(fd, &st);
    if (create && !existed) {
        std::string par, name;
        split(path, par, name);
        new_node(st.st_ino, false, mode, ino_of(bp(par.c_str())), name);
        trace("create %s ino=%lu", path, (unsigned long)st.st_ino);
    }
    if ((fi->flags & O_TRUNC) && st.st_size > 0) {
        save_range(st.st_ino, fd, 0, st.st_size);
        if (ftruncate(fd, 0) != 0) { int e = errno; close(fd); return -e; }
    }
    fi->fh = (uintptr_t) new FH{fd, st.st_ino};
    return 0;
}

static int op_create(const char *path, mode_t mode, struct fuse_file_info *fi) {
    LOCK();
    COUNT("create");
    return open_backing(path, fi, true, mode);
}

static int op_open(const char *path, struct fuse_file_info *fi) {
    LOCK();
    COUNT("open");
    return open_backing(path, fi, false, 0);
}

static int op_read(const char *, char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
    LOCK();
    COUNT("read");
    ssize_t n = pread(fh(fi)->fd, buf, size, off);
    return n < 0 ? -errno : (int)n;
}

static int op_write(const char *, const char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
    LOCK();
    COUNT("write");
    FH *h = fh(fi);
    trace("write ino=%lu off=%lld len=%zu", (unsigned long)h->ino, (long long)off, size);
    save_range(h->ino, h->fd, off, size);
    ssize_t n = pwrite(h->fd, buf, size, off);
    return n < 0 ? -errno : (int)n;
}

static int op_truncate(const char *path, off_t size, struct fuse_file_info *fi) {
    LOCK();
    COUNT("truncate");
    int fd = fi ? fh(fi)->fd : open(bp(path).c_str(), O_RDWR);
    if (fd < 0) return -errno;
    struct stat st;
    fstat(fd, &st);
    save_range(st.st_ino, fd, size, st.st_size > size ? st.st_size - size : 0);
    int r = ftruncate(fd, size) == 0 ? 0 : -errno;
    if (!fi) close(fd);
    return r;
}

static int op_fallocate(const char *, int mode, off_t off, off_t len, struct fuse_file_info *fi) {
    LOCK();
    COUNT("fallocate");
    FH *h = fh(fi);
    save_range(h->ino, h->fd, off, len);
    return fallocate(h->fd, mode, off, len) == 0 ? 0 : -errno;
}

static int op_fsync(const char *path, int datasync, struct fuse_file_info *fi) {
    LOCK();
    COUNT(datasync ? "fdatasync" : "fsync");
    FH *h = fh(fi);
    if (armed_cut("fsync")) { trace("ARMED CUT at fsync ino=%lu", (unsigned long)h->ino); return after_cut(lk); }
    trace("fsync %s ino=%lu datasync=%d%s", path ? path : nodes.count(h->ino) ? where(h->ino).c_str() + B.size() : "(unlinked)", (unsigned long)h->ino, datasync, ign_fsync ? " IGNORED" : "");
    if (ign_fsync) { COUNT("fsync_ignored"); return 0; }
    make_clean(h->ino);  // data and size (fdatasync keeps the size it needs, so the same here)
    return 0;
}

static int op_flush(const char *, struct fuse_file_info *) { LOCK(); COUNT("flush"); return 0; }

static int op_release(const char *, struct fuse_file_info *fi) {
    std::lock_guard<std::mutex> lk(g);
    COUNT("release");
    FH *h = fh(fi);
    close(h->fd);
    delete h;
    return 0;
}

static int op_statfs(const char *, struct statvfs *s) { LOCK(); return statvfs(B.c_str(), s) == 0 ? 0 : -errno; }
static int op_chmod(const char *path, mode_t m, struct fuse_file_info *fi) {
    LOCK(); COUNT("chmod");
    return (fi ? fchmod(fh(fi)->fd, m) : chmod(bp(path).c_str(), m)) == 0 ? 0 : -errno;
}
static int op_chown(const char *path, uid_t u, gid_t gr, struct fuse_file_info *fi) {
    LOCK(); COUNT("chown");
    return (fi ? fchown(fh(fi)->fd, u, gr) : lchown(bp(path).c_str(), u, gr)) == 0 ? 0 : -errno;
}
static int op_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi) {
    LOCK(); COUNT("utimens");
    return (fi ? futimens(fh(fi)->fd, tv) : utimensat(AT_FDCWD, bp(path).c_str(), tv, AT_SYMLINK_NOFOLLOW)) == 0 ? 0 : -errno;
}
static int op_symlink(const char *target, const char *path) {
    LOCK(); COUNT("symlink");
    std::string b = bp(path), par, name;
    if (symlink(target, b.c_str()) != 0) return -errno;
    split(path, par, name);
    new_node(ino_of(b), false, 0777, ino_of(bp(par.c_str())), name);
    make_clean(ino_of(b));  // a symlink's target is written with it
    return 0;
}

// ---------------------------------------------------------------------------------------------
// The cut: rebuild the backing directory from the durable state. A strict cut keeps nothing that
// was not made durable. A torn cut is a power loss on a disk that had also written some of the
// rest: a prefix (in order) of the unsynced entry changes, and for each unsynced file a size
// between its durable and its current one with every block old, new or (past the durable size)
// zeros, at random.
struct CutStats { long dirs = 0, files = 0, linked = 0, rebuilt = 0, bytes_dropped = 0, torn_files = 0, meta_kept = 0; };
struct Cut {
    bool torn = false;
    uint64_t rng = 0;
    std::unordered_map<ino_t, std::unordered_map<std::string, ino_t>> over;  // entries after the kept prefix
    uint64_t next() {  // splitmix64
        uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    const std::unordered_map<std::string, ino_t> &entries(ino_t d) {
        auto it = over.find(d);
        return it != over.end() ? it->second : nodes[d].dent;
    }
};

static void copy_durable(Node &n, const std::string &src, const std::string &dst, CutStats &cs, Cut &c) {
    int in = open(src.c_str(), O_RDONLY);
    int out = open(dst.c_str(), O_WRONLY | O_CREAT | O_EXCL, n.mode ? n.mode : 0644);
    struct stat st;
    off_t cur = 0;
    if (in >= 0 && fstat(in, &st) == 0) cur = st.st_size;
    off_t size = n.dsize;
    int how = c.torn ? (int)(c.next() % 3) : 0;  // 0: durable only, 1: all of it, 2: block by block
    if (how == 1) size = cur;
    if (how == 2) {
        off_t lo = std::min(cur, n.dsize), hi = std::max(cur, n.dsize);
        uint64_t r = c.next() % 3;
        size = r == 0 ? n.dsize : r == 1 ? cur : std::min<off_t>(hi, lo + (off_t)(c.next() % ((hi - lo) / BLK + 1)) * BLK);
    }
    if (how) cs.torn_files++;
    // Start from the current content, then put back old blocks (and zeros where nothing was written).
    off_t keep = std::min(cur, size);
    std::vector<char> buf(1 << 16);
    for (off_t at = 0; at < keep && in >= 0;) {
        ssize_t r = pread(in, buf.data(), std::min<off_t>(buf.size(), keep - at), at);
        if (r <= 0) break;
        pwrite(out, buf.data(), r, at);
        at += r;
    }
    if (ftruncate(out, size) != 0) perror("ftruncate");
    static const std::string zeros(BLK, '\0');
    for (uint64_t b = 0; (off_t)(b * BLK) < size; b++) {
        off_t at = b * BLK;
        auto sv = n.saved.find(b);
        bool has_old = at < n.dsize, has_new = at < cur;
        size_t len = std::min<off_t>(BLK, size - at);
        if (has_old && (!has_new || (sv != n.saved.end() && (how == 0 || (how == 2 && c.next() % 2))))) {
            if (sv != n.saved.end()) pwrite(out, sv->second.data(), std::min(len, sv->second.size()), at);
        } else if (!has_old && has_new && (how == 0 || (how == 2 && c.next() % 2))) {
            pwrite(out, zeros.data(), len, at);
        }
    }
    if (cur > size) cs.bytes_dropped += cur - size;
    if (in >= 0) close(in);
    close(out);
}

static void build(ino_t dino, const std::string &path, std::unordered_map<ino_t, std::string> &made, CutStats &cs, Cut &cut, int depth) {
    mkdir(path.c_str(), nodes[dino].mode ? nodes[dino].mode : 0755);
    cs.dirs++;
    if (depth > 64) return;
    for (auto &e : cut.entries(dino)) {
        std::string np = path + "/" + e.first;
        auto it = nodes.find(e.second);
        if (it == nodes.end()) continue;
        Node &c = it->second;
        if (c.dir) { build(e.second, np, made, cs, cut, depth + 1); continue; }
        cs.files++;
        auto m = made.find(e.second);
        if (m != made.end()) { link(m->second.c_str(), np.c_str()); continue; }
        std::string src = where(e.second);
        struct stat st;
        bool symlinked = lstat(src.c_str(), &st) == 0 && S_ISLNK(st.st_mode);
        if (!c.dirty || symlinked) {
            if (link(src.c_str(), np.c_str()) != 0) perror(("link " + src).c_str());
            cs.linked++;
        } else {
            copy_durable(c, src, np, cs, cut);
            cs.rebuilt++;
        }
        made[e.second] = np;
    }
}

static std::string cut(bool torn, uint64_t seed) {
    dead = true;
    trace("CUT torn=%d", torn);
    CutStats cs;
    Cut c;
    c.torn = torn;
    c.rng = seed;
    long names_lost = 0;
    for (ino_t i : pending_dirs) names_lost += nodes[i].pending.size();
    long files_dirty = dirty_files.size();
    if (torn && !mlog.empty()) {
        size_t keep = c.next() % (mlog.size() + 1);
        while (keep > 0 && keep < mlog.size() && mlog[keep].group == mlog[keep - 1].group) keep++;
        for (size_t i = 0; i < keep; i++) {
            auto &op = mlog[i];
            if (!nodes.count(op.dir)) continue;
            auto it = c.over.find(op.dir);
            if (it == c.over.end()) it = c.over.emplace(op.dir, nodes[op.dir].dent).first;
            if (op.target) it->second[op.name] = op.target; else it->second.erase(op.name);
        }
        cs.meta_kept = keep;
    }
    std::string tmp = B + ".cut", old = B + ".old";
    std::unordered_map<ino_t, std::string> made;
    nodes[ROOT].mode = 0755;
    build(ROOT, tmp, made, cs, c, 0);
    if (rename(B.c_str(), old.c_str()) != 0 || rename(tmp.c_str(), B.c_str()) != 0) perror("swap");
    std::string cmd = "rm -rf '" + old + "' '" + LIMBO + "' && mkdir -p '" + LIMBO + "'";
    if (system(cmd.c_str()) != 0) fprintf(stderr, "plfs: cleanup failed\n");
    char out[640];
    snprintf(out, sizeof out,
             "{\"torn\": %s, \"dirs\": %ld, \"files\": %ld, \"files_linked\": %ld, \"files_rebuilt\": %ld, \"files_not_synced\": %ld, "
             "\"entry_changes_not_synced\": %ld, \"entry_changes_kept\": %ld, \"files_torn\": %ld, \"bytes_dropped\": %ld}",
             torn ? "true" : "false", cs.dirs, cs.files, cs.linked, cs.rebuilt, files_dirty, (long)mlog.size(), cs.meta_kept,
             cs.torn_files, cs.bytes_dropped);
    (void)names_lost;
    return out;
}

static std::string stats_json() {
    std::string s = "{\"ops\": {";
    bool first = true;
    for (auto &o : ops) { s += (first ? "\"" : ", \"") + o.first + "\": " + std::to_string(o.second); first = false; }
    s += "}, \"fuse_opcodes\": {";
    first = true;
    for (unsigned i = 0; i < 64; i++) {
        if (!raw[i]) continue;
        const char *n = opname(i);
        s += (first ? "\"" : ", \"") + (n ? std::string(n) : "OP" + std::to_string(i)) + "\": " + std::to_string(raw[i]);
        first = false;
    }
    char tail[256];
    snprintf(tail, sizeof tail, "}, \"dirty_files\": %zu, \"dirs_with_unsynced_entries\": %zu, \"nodes\": %zu, \"untracked\": %ld, "
             "\"capable\": %u, \"want\": %u, \"dead\": %s}",
             dirty_files.size(), pending_dirs.size(), nodes.size(), untracked, cap_capable, cap_want, dead ? "true" : "false");
    return s + tail;
}

static void scan(ino_t dino, const std::string &path) {
    DIR *d = opendir(path.c_str());
    if (!d) return;
    while (struct dirent *e = readdir(d)) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        std::string p = path + "/" + e->d_name;
        struct stat st;
        if (lstat(p.c_str(), &st) != 0) continue;
        Node &n = nodes[st.st_ino];
        n.dir = S_ISDIR(st.st_mode);
        n.mode = st.st_mode & 07777;
        n.vlinks++;
        n.dlinks++;
        n.names.push_back({dino, e->d_name});
        nodes[dino].vent[e->d_name] = st.st_ino;
        nodes[dino].dent[e->d_name] = st.st_ino;
        if (n.dir) scan(st.st_ino, p);
    }
    closedir(d);
}

static void serve_client(int c) {
    FILE *f = fdopen(c, "r+");
    char line[256];
    while (fgets(line, sizeof line, f)) {
        std::string cmd(line);
        while (!cmd.empty() && (cmd.back() == '\n' || cmd.back() == '\r')) cmd.pop_back();
        std::string reply;
        {
            if (cmd == "thaw") {  // the server is gone: let held requests fail so the file system can unmount
                { std::lock_guard<std::mutex> t(thaw_m); thawed = true; }
                thaw_cv.notify_all();
                fprintf(f, "{\"ok\": true}\n");
                fflush(f);
                continue;
            }
            std::unique_lock<std::mutex> lk(g);
            bool hold = false;
            if (cmd == "ping") reply = "{\"pong\": true}";
            else if (cmd == "stats") reply = stats_json();
            else if (cmd == "lastcut") reply = last_cut.empty() ? "{}" : last_cut;
            else if (dead) { reply = "{\"dead\": true}"; hold = (cmd == "syncfs" || cmd == "sync") && !cut_errors; }
            else if (cmd == "commit") { commit_all(); reply = "{\"ok\": true}"; }
            else if (cmd == "syncfs" || cmd == "sync") {
                ops[cmd + "_seen"]++;
                if (armed_cut("syncfs")) { reply = "{\"dead\": true}"; hold = !cut_errors; goto answer; }
                trace("%s%s", cmd.c_str(), ign_syncfs ? " IGNORED" : "");
                if (ign_syncfs) ops["syncfs_ignored"]++;
                else commit_all();
                reply = "{\"ok\": true}";
            } else if (cmd == "cut") reply = cut(false, 0);
            else if (cmd.compare(0, 9, "cut torn ") == 0) reply = cut(true, strtoull(cmd.c_str() + 9, nullptr, 10));
            else if (cmd.compare(0, 4, "arm ") == 0) {  // arm N [torn SEED]
                char *end;
                arm_left = strtol(cmd.c_str() + 4, &end, 10);
                arm_torn = strncmp(end, " torn ", 6) == 0;
                arm_seed = arm_torn ? strtoull(end + 6, nullptr, 10) : 0;
                reply = "{\"ok\": true}";
            }
            else reply = "{\"error\": \"unknown command\"}";
        answer:
            if (hold) {  // a syncfs after the cut never returns (the machine is off) until thawed
                lk.unlock();
                std::unique_lock<std::mutex> t(thaw_m);
                thaw_cv.wait(t, [] { return thawed; });
            }
        }
        fprintf(f, "%s\n", reply.c_str());
        fflush(f);
    }
    fclose(f);
}

static int listen_ctl(const char *path) {
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {};
    a.sun_family = AF_UNIX;
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    unlink(path);
    if (bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 8) != 0) { perror("ctl socket"); exit(2); }
    return s;
}

static int mount_main(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "usage: plfs mount BACKING MOUNTPOINT CTLSOCK [--ignore LIST] [--writeback] [--trace FILE]\n"); return 2; }
    char *real = realpath(argv[2], nullptr);
    if (!real) { perror(argv[2]); return 2; }
    B = real;
    free(real);
    LIMBO = B + ".limbo";
    MNT = argv[3];
    const char *ctl = argv[4];
    for (int i = 5; i < argc; i++) {
        std::string a = argv[i];
        if (a == "--ignore" && i + 1 < argc) {
            std::string l = std::string(argv[++i]) + ",";
            for (size_t at = 0, c; (c = l.find(',', at)) != std::string::npos; at = c + 1) {
                std::string t = l.substr(at, c - at);
                if (t == "fsync") ign_fsync = true;
                else if (t == "fsyncdir") ign_fsyncdir = true;
                else if (t == "syncfs") ign_syncfs = true;
                else if (!t.empty()) { fprintf(stderr, "plfs: --ignore takes fsync,fsyncdir,syncfs\n"); return 2; }
            }
        } else if (a == "--writeback") writeback = true;
        else if (a == "--cut-errors") cut_errors = true;
        else if (a == "--trace" && i + 1 < argc) tracef = fopen(argv[++i], "a");
        else { fprintf(stderr, "plfs: unknown option %s\n", a.c_str()); return 2; }
    }
    std::string mk = "rm -rf '" + LIMBO + "' && mkdir -p '" + LIMBO + "'";
    if (system(mk.c_str()) != 0) return 2;
    struct stat st;
    lstat(B.c_str(), &st);
    ROOT = st.st_ino;
    nodes[ROOT].dir = true;
    nodes[ROOT].mode = st.st_mode & 07777;
    nodes[ROOT].vlinks = nodes[ROOT].dlinks = 1;
    scan(ROOT, B);

    int ls = listen_ctl(ctl);
    std::thread([ls] {
        for (;;) {
            int c = accept4(ls, nullptr, nullptr, SOCK_CLOEXEC);
            if (c < 0) { if (errno == EINTR) continue; return; }
            std::thread(serve_client, c).detach();
        }
    }).detach();

    static struct fuse_operations o = {};
    o.init = op_init; o.getattr = op_getattr; o.readlink = op_readlink; o.opendir = op_opendir; o.readdir = op_readdir;
    o.releasedir = op_releasedir; o.fsyncdir = op_fsyncdir; o.mkdir = op_mkdir; o.unlink = op_unlink; o.rmdir = op_rmdir;
    o.rename = op_rename; o.link = op_link; o.create = op_create; o.open = op_open; o.read = op_read; o.write = op_write;
    o.truncate = op_truncate; o.fallocate = op_fallocate; o.fsync = op_fsync; o.flush = op_flush; o.release = op_release;
    o.statfs = op_statfs; o.chmod = op_chmod; o.chown = op_chown; o.utimens = op_utimens; o.symlink = op_symlink;
    const char *fargv[] = {"plfs", "-o", "fsname=plfs,subtype=plfs", nullptr};
    struct fuse_args args = FUSE_ARGS_INIT(3, (char **)fargv);
    struct fuse *f = fuse_new(&args, &o, sizeof o, nullptr);
    if (!f || fuse_mount(f, MNT.c_str()) != 0) { fprintf(stderr, "plfs: cannot mount %s\n", MNT.c_str()); return 3; }
    struct fuse_session *se = fuse_get_session(f);
    fuse_set_signal_handlers(se);
    printf("MOUNTED %s\n", MNT.c_str());
    fflush(stdout);
    // Our own loop: every request is counted by the opcode the kernel sent, including those the
    // high-level library answers itself (ENOSYS for SYNCFS or TMPFILE, FLUSH, SETLK, ...).
    struct fuse_buf fbuf = {};
    while (!fuse_session_exited(se)) {
        int r = fuse_session_receive_buf(se, &fbuf);
        if (r == -EINTR) continue;
        if (r <= 0) break;
        if (!(fbuf.flags & FUSE_BUF_IS_FD) && fbuf.size >= 8) {
            uint32_t opcode;
            memcpy(&opcode, (char *)fbuf.mem + 4, 4);
            std::lock_guard<std::mutex> lk(g);
            raw[opcode < 64 ? opcode : 63]++;
        }
        fuse_session_process_buf(se, &fbuf);
    }
    free(fbuf.mem);
    fuse_remove_signal_handlers(se);
    fuse_unmount(f);
    fuse_destroy(f);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// plfs run: the command runs under a seccomp filter that holds every syncfs/sync until the
// model has recorded it (SECCOMP_RET_USER_NOTIF), then lets the kernel run it.
static int ctl_connect(const char *path) {
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {};
    a.sun_family = AF_UNIX;
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) { perror("plfs run: ctl"); exit(2); }
    return s;
}

static int run_main(int argc, char **argv) {
    if (argc < 6 || strcmp(argv[4], "--")) { fprintf(stderr, "usage: plfs run CTLSOCK MOUNTPOINT -- COMMAND...\n"); return 2; }
    const char *ctl = argv[2];
    char *mnt = realpath(argv[3], nullptr);
    std::string mount = mnt ? mnt : argv[3];
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) != 0) { perror("socketpair"); return 2; }
    pid_t child = fork();
    if (child == 0) {
        close(sp[0]);
        struct sock_filter filt[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_syncfs, 2, 0),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_sync, 1, 0),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
        };
        struct sock_fprog prog = {(unsigned short)(sizeof filt / sizeof *filt), filt};
        int lfd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
        if (lfd < 0) { perror("plfs run: seccomp"); _exit(3); }
        char cbuf[CMSG_SPACE(sizeof(int))] = {};
        char one = 1;
        struct iovec iov = {&one, 1};
        struct msghdr m = {};
        m.msg_iov = &iov; m.msg_iovlen = 1; m.msg_control = cbuf; m.msg_controllen = sizeof cbuf;
        struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
        cm->cmsg_level = SOL_SOCKET; cm->cmsg_type = SCM_RIGHTS; cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &lfd, sizeof(int));
        if (sendmsg(sp[1], &m, 0) != 1) _exit(3);
        close(lfd);
        char ack;
        if (read(sp[1], &ack, 1) != 1) _exit(3);  // the supervisor holds the listener now
        close(sp[1]);
        execvp(argv[5], argv + 5);
        perror("plfs run: exec");
        _exit(127);
    }
    close(sp[1]);
    char cbuf[CMSG_SPACE(sizeof(int))] = {};
    char one;
    struct iovec iov = {&one, 1};
    struct msghdr m = {};
    m.msg_iov = &iov; m.msg_iovlen = 1; m.msg_control = cbuf; m.msg_controllen = sizeof cbuf;
    if (recvmsg(sp[0], &m, 0) != 1) { fprintf(stderr, "plfs run: no listener\n"); return 3; }
    int lfd;
    memcpy(&lfd, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof(int));
    int cs = ctl_connect(ctl);
    FILE *cf = fdopen(cs, "r+");
    if (write(sp[0], "k", 1) != 1) return 3;
    close(sp[0]);
    struct seccomp_notif_sizes sz;
    syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sz);
    std::vector<char> reqb(std::max<size_t>(sz.seccomp_notif, sizeof(struct seccomp_notif)));
    std::vector<char> respb(std::max<size_t>(sz.seccomp_notif_resp, sizeof(struct seccomp_notif_resp)));
    for (;;) {
        int status;
        pid_t w = waitpid(child, &status, WNOHANG);
        if (w == child) {
            if (WIFEXITED(status)) return WEXITSTATUS(status);
            return 128 + WTERMSIG(status);
        }
        struct pollfd p = {lfd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0 || !(p.revents & POLLIN)) continue;
        memset(reqb.data(), 0, reqb.size());
        struct seccomp_notif *req = (struct seccomp_notif *)reqb.data();
        if (ioctl(lfd, SECCOMP_IOCTL_NOTIF_RECV, req) != 0) continue;
        const char *what = nullptr;
        if (req->data.nr == __NR_sync) what = "sync";
        else if (req->data.nr == __NR_syncfs) {
            char link[64], target[4096];
            snprintf(link, sizeof link, "/proc/%d/fd/%d", req->pid, (int)req->data.args[0]);
            ssize_t n = readlink(link, target, sizeof target - 1);
            target[n > 0 ? n : 0] = 0;
            std::string t(target);
            if (t == mount || t.compare(0, mount.size() + 1, mount + "/") == 0) what = "syncfs";
        }
        bool failed = false;  // after the cut (or without the daemon) the call fails as on a dead machine
        if (what) {
            char reply[256];
            fprintf(cf, "%s\n", what);
            fflush(cf);
            failed = !fgets(reply, sizeof reply, cf) || strstr(reply, "\"ok\"") == nullptr;
        }
        memset(respb.data(), 0, respb.size());
        struct seccomp_notif_resp *resp = (struct seccomp_notif_resp *)respb.data();
        resp->id = req->id;
        if (failed) resp->error = -EIO;
        else resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
        ioctl(lfd, SECCOMP_IOCTL_NOTIF_SEND, resp);
    }
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "mount")) return mount_main(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "run")) return run_main(argc, argv);
    fprintf(stderr, "usage: plfs mount BACKING MOUNTPOINT CTLSOCK [...] | plfs run CTLSOCK MOUNTPOINT -- COMMAND...\n");
    return 2;
}
