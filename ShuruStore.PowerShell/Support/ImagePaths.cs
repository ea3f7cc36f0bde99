using System.Management.Automation;
using ShuruStore.Core;

namespace ShuruStore.Commands;

/// <summary>
/// Checks a raw image path before the engine opens it, so that a directory (say the folder the
/// image is in) is reported as the wrong kind of path rather than as a missing file: the user
/// needs to be told what to give instead.
/// </summary>
internal static class ImagePaths
{
    /// <summary>The error for an image path that names a directory; null otherwise.</summary>
    public static ErrorRecord? DirectoryProblem(string image) => Directory.Exists(image)
        ? ShuruErrors.Create(ShuruErrors.ImageIsDirectory, ErrorCategory.InvalidArgument, image,
            $"'{image}' is a directory; give the raw image file in it (for example '{Path.Combine(image, "rootfs.ext4")}').")
        : null;

    /// <summary>The error for an image path that is a directory or does not exist; null when it
    /// names a file.</summary>
    public static ErrorRecord? Problem(string image) => DirectoryProblem(image) ?? (File.Exists(image)
        ? null
        : ShuruErrors.Create(nameof(ShuruErrorKind.ImageNotFound), ErrorCategory.ObjectNotFound, image, $"The image '{image}' does not exist."));
}
