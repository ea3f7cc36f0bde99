using ShuruStore.Core.Remote;

namespace ShuruStore.Core.Tests.Remote;

public sealed class S3LocationTests
{
    [Theory]
    [InlineData("s3://bucket", "bucket", "", "s3://bucket")]
    [InlineData("s3://bucket/", "bucket", "", "s3://bucket")]
    [InlineData("S3://my-bucket.v2/vm/base", "my-bucket.v2", "vm/base", "s3://my-bucket.v2/vm/base")]
    [InlineData("s3://bkt/vm/base/", "bkt", "vm/base", "s3://bkt/vm/base")]
    [InlineData("s3://bkt//lead", "bkt", "lead", "s3://bkt/lead")]
    [InlineData("s3://bkt/a b/ü@x", "bkt", "a b/ü@x", "s3://bkt/a b/ü@x")]
    public void ParsesAndFormats(string text, string bucket, string prefix, string formatted)
    {
        var l = S3Location.Parse(text);
        Assert.Equal(bucket, l.Bucket);
        Assert.Equal(prefix, l.Prefix);
        Assert.Equal(formatted, l.ToString());
        Assert.Equal(l, S3Location.Parse(l.ToString()));
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("/var/lib/x.idx", "is not an S3 location")]
    [InlineData("s3:/bucket/x", "is not an S3 location")]
    [InlineData("s3://", "bucket name is missing")]
    [InlineData("s3:///x", "bucket name is missing")]
    [InlineData("s3://ab/x", "3 to 63")]
    [InlineData("s3://Bucket/x", "lowercase")]
    [InlineData("s3://bucket_name", "lowercase")]
    [InlineData("s3://-bucket", "start and end")]
    [InlineData("s3://a..b", "'..'")]
    [InlineData("s3://192.168.1.1/x", "IP address")]
    [InlineData("s3://bkt/a//b", "empty segment")]
    [InlineData("s3://bkt/a/../b", "'..' segment")]
    [InlineData("s3://bkt/./b", "'.' segment")]
    [InlineData("s3://bkt/a\\b", "'\\'")]
    [InlineData("s3://bkt/a\nb", "control character")]
    [InlineData("s3://bkt/x?versionId=1", "no query")]
    public void RejectsMalformedLocationsWithTheReason(string text, string reason)
    {
        Assert.False(S3Location.TryParse(text, out _, out var error));
        Assert.Contains(reason, error);
        var e = Assert.Throws<ShuruStoreException>(() => S3Location.Parse(text));
        Assert.Equal(ShuruErrorKind.RemoteInvalid, e.Kind);
        Assert.Equal(error, e.Message);
    }

    [Fact]
    public void UserInformationIsRejectedAndNeverRepeated()
    {
        const string text = "s3://AKIAEXAMPLE:supersecret@bucket/prefix";
        var e = Assert.Throws<ShuruStoreException>(() => S3Location.Parse(text));
        Assert.Equal(ShuruErrorKind.RemoteInvalid, e.Kind);
        Assert.DoesNotContain("supersecret", e.ToString() + e.Path);
        Assert.DoesNotContain("AKIAEXAMPLE", e.ToString() + e.Path);
    }

    [Fact]
    public void JoinsKeysUnderThePrefix()
    {
        var root = S3Location.Parse("s3://bkt");
        var vm = S3Location.Parse("s3://bkt/vm/a");
        Assert.Equal("chunks/ab", root.KeyOf("chunks/ab"));
        Assert.Equal("vm/a/chunks/ab", vm.KeyOf("chunks/ab"));
        Assert.Equal("vm/a/chunks/ab", vm.KeyOf("/chunks/ab/"));
        Assert.Equal("vm/a/", vm.KeyPrefix);
        Assert.Equal("", root.KeyPrefix);
        Assert.Equal("s3://bkt/vm/a/x.idx", vm.Child("x.idx").ToString());
        Assert.Equal("x.idx", vm.Child("x.idx").Name);
        Assert.Equal(vm, vm.Child("x.idx").Parent);
        Assert.Equal(root, S3Location.Parse("s3://bkt/top").Parent);
        Assert.Null(root.Parent);
        Assert.Equal(S3Location.Parse("s3://bkt/other"), vm.WithPrefix("other/"));
        foreach (var bad in new[] { "", "/", "a//b", "../x", "a/./b", "a\0b" })
            Assert.Equal(ShuruErrorKind.RemoteInvalid, Assert.Throws<ShuruStoreException>(() => vm.KeyOf(bad)).Kind);
        Assert.Throws<ShuruStoreException>(() => root.KeyOf(new string('k', 1025)));
        Assert.Equal(1024, root.KeyOf(new string('k', 1024)).Length);
    }

    [Fact]
    public void TellsS3UrisFromPaths()
    {
        Assert.True(S3Location.IsS3Uri("s3://b/x"));
        Assert.True(S3Location.IsS3Uri("S3://b"));
        Assert.False(S3Location.IsS3Uri("/tmp/s3://x"));
        Assert.False(S3Location.IsS3Uri("./x.idx"));
        Assert.False(S3Location.IsS3Uri(null));
    }

    [Fact]
    public void EqualityIsByBucketAndPrefix()
    {
        Assert.Equal(S3Location.Parse("s3://bkt/a/"), S3Location.Parse("S3://bkt/a"));
        Assert.NotEqual(S3Location.Parse("s3://bkt/a"), S3Location.Parse("s3://bkt/A"));
        Assert.Equal(S3Location.Parse("s3://bkt/a").GetHashCode(), S3Location.Parse("s3://bkt/a/").GetHashCode());
    }
}
