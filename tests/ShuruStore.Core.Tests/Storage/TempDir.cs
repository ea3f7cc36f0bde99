namespace ShuruStore.Core.Tests.Storage;

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
    public void Dispose() { try { Directory.Delete(Path, true); } catch { } }

    public static byte[] Pattern(int length, int seed)
    {
        var b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }
}
