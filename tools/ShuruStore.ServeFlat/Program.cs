// Serves a raw image (or a sparse in-memory disk) over NBD on a Unix socket until Ctrl-C or
// SIGTERM. A tiny host for benchmarks and manual tests with real clients:
//   ShuruStore.ServeFlat IMAGE SOCKET [--readonly] [--verbose]
//   ShuruStore.ServeFlat --memory BYTES SOCKET [--verbose]
using System.Runtime.InteropServices;
using ShuruStore.Core.BlockDevices;
using ShuruStore.Core.Nbd;

if (args.Length < 2)
{
    Console.Error.WriteLine("usage: ShuruStore.ServeFlat IMAGE SOCKET [--readonly] [--verbose] | --memory BYTES SOCKET");
    return 2;
}
bool verbose = args.Contains("--verbose");
IBlockDevice device = args[0] == "--memory"
    ? new MemoryDevice(long.Parse(args[1]))
    : new FlatFileDevice(args[0], readOnly: args.Contains("--readonly"));
string socket = args[0] == "--memory" ? args[2] : args[1];
using var server = new NbdServer(device, new NbdServerOptions { SocketPath = socket });
if (verbose) server.Event += (_, e) => Console.Error.WriteLine(e);
var done = new ManualResetEventSlim();
Console.CancelKeyPress += (_, e) => { e.Cancel = true; done.Set(); };
using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; done.Set(); });
server.Start();
Console.WriteLine(server.Uri);
done.Wait();
server.Stop();
device.Dispose();
return 0;
