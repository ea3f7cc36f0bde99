using System.Management.Automation;
using ShuruStore.Core;

namespace ShuruStore.Commands;

/// <summary>
/// Checks a raw image path before the engine opens it, so that a directory (say the folder the
/// image is in) is reported as what it is rather than as a file that "does not exist": the user
/// needs to be told what to give instead. The ErrorId stays the one scripts already catch for an
/// image that cannot be found (ImageNotFound, BaseImageMissing); only the message says more.
/// </summary>
internal static class ImagePaths
{
    /// <summary>The error for an image path that names a directory; null otherwise.</summary>
    public static ErrorRecord? DirectoryProblem(string image, ShuruErrorKind kind) => Directory.Exists(image)
        ? ShuruErrors.Create(kind.ToString(), ShuruErrors.CategoryOf(kind), image,
            $"'{image}' is a directory, not an image file; give the raw image file in it (for example '{Path.Combine(image, "rootfs.ext4")}').")
        : null;

    /// <summary>The error for an image path that is a directory or does not exist; null when it
    /// names a file.</summary>
    public static ErrorRecord? Problem(string image) => DirectoryProblem(image, ShuruErrorKind.ImageNotFound) ?? (File.Exists(image)
        ? null
        : ShuruErrors.Create(nameof(ShuruErrorKind.ImageNotFound), ErrorCategory.ObjectNotFound, image, $"The image '{image}' does not exist."));
}
