using ShuruStore.Core.Interop;

namespace ShuruStore.Core.Tests.Interop;

/// <summary>Naming a file atomically and never over an existing one.</summary>
public class FileNamingTests
{
    [Fact]
    public void RenameNoReplaceNeverOverwritesAName()
    {
        if (!OperatingSystem.IsLinux()) return;
        using var t = new TempDir();
        FileDescriptors.Close(FileDescriptors.CreateFileKeepOpen(t["a"], "first"u8));
        FileDescriptors.Close(FileDescriptors.CreateFileKeepOpen(t["b"], "second"u8));
        Assert.Throws<IOException>(() => FileDescriptors.Close(FileDescriptors.CreateFileKeepOpen(t["a"], "again"u8))); // O_EXCL
        Assert.False(FileNaming.RenameNoReplace(t["b"], t["a"]));   // the name exists: left alone
        Assert.Equal("first", File.ReadAllText(t["a"]));
        Assert.True(File.Exists(t["b"]));
        Assert.True(FileNaming.RenameNoReplace(t["b"], t["c"]));
        Assert.Equal("second", File.ReadAllText(t["c"]));
        Assert.False(File.Exists(t["b"]));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_nameless_file_is_linked_to_a_free_name_and_never_over_a_taken_one(bool linkThroughProc)
    {
        if (!OperatingSystem.IsLinux()) return;
        using var t = new TempDir();
        FileNaming.EmptyPathLinkDisabled = linkThroughProc;
        try
        {
            File.WriteAllText(t["taken"], "first");
            int fd = FileDescriptors.TryCreateNamelessKeepOpen(t.Path, "nameless"u8);
            Assert.True(fd >= 0);
            try
            {
                Assert.False(FileNaming.LinkNoReplace(fd, t["taken"]));
                Assert.Equal("first", File.ReadAllText(t["taken"]));
                Assert.True(FileNaming.LinkNoReplace(fd, t["new"]));
                Assert.Equal("nameless", File.ReadAllText(t["new"]));
            }
            finally { FileDescriptors.Close(fd); }
            Assert.Equal(["new", "taken"], Directory.GetFileSystemEntries(t.Path).Select(Path.GetFileName).Order());
        }
        finally { FileNaming.EmptyPathLinkDisabled = false; }
    }
}
