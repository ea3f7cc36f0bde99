using ShuruStore.Core.Hosting;

namespace ShuruStore.Core.Tests.Hosting;

/// <summary>The environment switches and their defaults.</summary>
public class EngineEnvironmentTests
{
    [Theory]
    [InlineData(null, false)] // the default: flat-image writes go through the page cache (performance.md, step 40)
    [InlineData("0", false)]
    [InlineData("yes", false)]
    [InlineData("1", true)]
    public void Direct_writes_are_off_unless_asked_for(string? value, bool expected)
    {
        string? before = Environment.GetEnvironmentVariable("SHURUSTORE_DIRECT_WRITES");
        try
        {
            Environment.SetEnvironmentVariable("SHURUSTORE_DIRECT_WRITES", value);
            Assert.Equal(expected, EngineEnvironment.DirectWrites);
        }
        finally { Environment.SetEnvironmentVariable("SHURUSTORE_DIRECT_WRITES", before); }
    }
}
