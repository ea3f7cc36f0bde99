# Negative cases through python3-libnbd with client-side checks off (strict mode 0), so the
# server, not libnbd, has to refuse the bad requests. Usage: libnbd_negative.py URI
import errno
import sys

import nbd

uri = sys.argv[1]
failures = []


def expect_errno(name, code, fn):
    try:
        fn()
    except nbd.Error as e:
        # libnbd's Python binding reports errno as its symbolic name ("EINVAL").
        if e.errno in (code, errno.errorcode[code]):
            print(f"ok   {name}: errno {e.errno}")
        else:
            failures.append(f"{name}: errno {e.errno} ({e.string}), expected {code}")
        return
    failures.append(f"{name}: succeeded, expected errno {code}")


def expect_ok(name, fn):
    try:
        fn()
        print(f"ok   {name}")
    except nbd.Error as e:
        failures.append(f"{name}: {e.string} (errno {e.errno})")


h = nbd.NBD()
h.set_strict_mode(0)
h.add_meta_context("base:allocation")
h.connect_uri(uri)
size = h.get_size()
MiB = 1024 * 1024

expect_errno("read past end", errno.EINVAL, lambda: h.pread(1024, size - 512))
expect_errno("write past end", errno.ENOSPC, lambda: h.pwrite(b"x" * 1024, size - 512))
expect_errno("trim past end", errno.EINVAL, lambda: h.trim(1024, size - 512))
expect_errno("zero past end", errno.ENOSPC, lambda: h.zero(1024, size))
expect_errno("cache past end", errno.EINVAL, lambda: h.cache(1024, size))
expect_errno("block status past end", errno.EINVAL, lambda: h.block_status(1024, size, lambda *a: 0))
expect_ok("zero-length read", lambda: h.pread(0, 0))
expect_ok("zero-length write", lambda: h.pwrite(b"", 0))
expect_ok("zero-length trim", lambda: h.trim(0, 0))
expect_errno("oversized read (33 MiB)", errno.EINVAL, lambda: h.pread(33 * MiB, 0))
expect_errno("oversized write (33 MiB)", errno.EINVAL, lambda: h.pwrite(b"\0" * (33 * MiB), 0))
expect_errno("unknown command flag on read", errno.EINVAL, lambda: h.pread(512, 0, flags=0x40))
expect_errno("req_one on read", errno.EINVAL, lambda: h.pread(512, 0, flags=nbd.CMD_FLAG_REQ_ONE))
# After all that, the connection still works and data round-trips.
expect_ok("write after errors", lambda: h.pwrite(b"\xab" * 4096, 8192, nbd.CMD_FLAG_FUA))
if h.pread(4096, 8192) != b"\xab" * 4096:
    failures.append("data did not round-trip after errors")
expect_ok("flush", lambda: h.flush())
h.shutdown()

# Options in the "wrong" order, driven by hand in option mode.
h = nbd.NBD()
h.set_strict_mode(0)
h.set_opt_mode(True)
h.set_request_structured_replies(False)
h.add_meta_context("base:allocation")
h.connect_uri(uri)
exports = []
h.opt_list(lambda name, desc: exports.append(name))
if exports != ["export"]:
    failures.append(f"opt_list gave {exports}")
h.set_export_name("no-such-export")
expect_errno("opt_info unknown export", errno.ENOENT, lambda: h.opt_info())
h.set_export_name("export")
expect_ok("opt_info", lambda: h.opt_info())
if h.get_size() != size:
    failures.append("opt_info size mismatch")
expect_ok("opt_go without structured replies", lambda: h.opt_go())
if h.get_structured_replies_negotiated():
    failures.append("structured replies negotiated although not requested")
if h.can_meta_context("base:allocation"):
    failures.append("base:allocation negotiated without structured replies")
expect_errno("block status without meta context", errno.EINVAL, lambda: h.block_status(4096, 0, lambda *a: 0))
expect_ok("simple read", lambda: h.pread(4096, 0))
h.shutdown()

# Abort during option haggling.
h = nbd.NBD()
h.set_opt_mode(True)
h.connect_uri(uri)
expect_ok("opt_abort", lambda: h.opt_abort())

if failures:
    print("FAILURES:")
    for f in failures:
        print("  " + f)
    sys.exit(1)
print("ALL OK")
