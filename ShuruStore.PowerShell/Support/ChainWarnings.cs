using System.Management.Automation;
using ShuruStore.Core.Storage;

namespace ShuruStore.Commands;

/// <summary>
/// What the engine found wrong with an index chain that does not stop the work, as warnings: a
/// relative path stored in an index whose two readings (the working directory, as shuru reads
/// it, and the index's folder) name different files, and a chain that stops at a parent index
/// that does not exist. The engine returns them; the cmdlets write them.
/// </summary>
internal static class ChainWarnings
{
    /// <summary>Writes each path warning once, as a sentence.</summary>
    public static void WritePathWarnings(Cmdlet cmdlet, IEnumerable<string> warnings)
    {
        foreach (string w in warnings.Distinct()) cmdlet.WriteWarning(Sentence(w));
    }

    /// <summary>Writes that <paramref name="link"/> breaks a chain and what the cmdlet did about it.</summary>
    public static void WriteMissingParent(Cmdlet cmdlet, MissingParentLink link, string whatWasDone) =>
        cmdlet.WriteWarning(Sentence(link.Describe()) + " " + whatWasDone);

    private static string Sentence(string text) =>
        text.Length == 0 ? text : char.ToUpperInvariant(text[0]) + text[1..] + (text.EndsWith('.') ? "" : ".");
}
