// Engine probe: a CowDisk in this process, no NBD, to time one store path at a time.
//   dotnet run -c Release -- seq  DISK_MIB BUDGET_MIB WORKDIR          sequential 1 MiB writes (4 threads), then Flush
//   dotnet run -c Release -- rand DISK_MIB BUDGET_MIB WORKDIR WRITES   random 4 KiB writes (8 threads) over a random base, then Flush
// WORKDIR gets a random base/source image and a fresh chunk store per run (never deleted here:
// on ext4 without a journal, creating files right after deleting thousands is much slower).
using System.Diagnostics;
using ShuruStore.Core.BlockDevices;
using ShuruStore.Core.Storage;

string mode = args[0];
int mib = int.Parse(args[1]);
long budget = long.Parse(args[2]) << 20;
string work = args[3];
Directory.CreateDirectory(work);
string source = Path.Combine(work, $"source-{mib}.raw");
if (!File.Exists(source) || new FileInfo(source).Length != (long)mib << 20)
{
    var bytes = new byte[(long)mib << 20];
    new Random(1).NextBytes(bytes);
    File.WriteAllBytes(source, bytes);
}
var src = File.ReadAllBytes(source);
string cas = Path.Combine(work, $"cas-{DateTime.UtcNow:HHmmssfff}");
using var d = CowDisk.Open(new CowDiskOptions
{
    CasPath = cas, DiskSize = (long)mib << 20, DirtyBudgetBytes = budget,
    BaseImagePath = mode == "rand" ? source : null,
});
var sw = Stopwatch.StartNew();
if (mode == "seq")
    Parallel.For(0, 4, t => { for (int i = t; i < mib; i += 4) d.Write((long)i << 20, src.AsSpan(i << 20, 1 << 20), WriteFlags.None); });
else
{
    int writes = int.Parse(args[4]);
    Parallel.For(0, 8, t =>
    {
        var r = new Random(t);
        for (int i = 0; i < writes / 8; i++)
        {
            long off = (long)r.Next(mib * 256) * 4096;
            d.Write(off, src.AsSpan((int)(off % (src.Length - 4096)), 4096), WriteFlags.None);
        }
    });
}
long writeMs = sw.ElapsedMilliseconds;
sw.Restart();
d.Flush();
Console.WriteLine($"{mode}: writes {writeMs} ms, flush {sw.ElapsedMilliseconds} ms; {d.Statistics}");
