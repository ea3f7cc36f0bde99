namespace ShuruStore.Core.Tests;

/// <summary>A scratch directory per test, removed afterwards.</summary>
public sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "shuru-cas-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(Path);
    }
    public string Path { get; }
    public string this[string name] => System.IO.Path.Combine(Path, name);
    public string Cas => this["cas"];
    /// <summary>Files under a chunk name in <c>cas/chunks</c> (temp and scratch files excluded).</summary>
    public int ChunkFileCount => Directory.Exists(System.IO.Path.Combine(Cas, "chunks"))
        ? Directory.GetFiles(System.IO.Path.Combine(Cas, "chunks")).Count(f => ShuruStore.Core.Storage.ChunkHash.TryParse(System.IO.Path.GetFileName(f), out _)) : 0;
    public void Dispose() { try { Directory.Delete(Path, true); } catch { } }

    public static byte[] Pattern(int length, int seed)
    {
        var b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }
}
