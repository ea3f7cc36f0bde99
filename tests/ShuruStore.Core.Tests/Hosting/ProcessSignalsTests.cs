using ShuruStore.Core.Hosting;

namespace ShuruStore.Core.Tests.Hosting;

/// <summary>The process's ignored signals, as the kernel reports them.</summary>
public class ProcessSignalsTests
{
    [Fact]
    public void Reads_the_kernels_mask_of_ignored_signals()
    {
        if (!OperatingSystem.IsLinux()) return;
        Assert.True(ProcessSignals.IsIgnored(13));  // SIGPIPE: .NET ignores it in every process
        Assert.False(ProcessSignals.IsIgnored(9));  // SIGKILL cannot be ignored
    }
}
