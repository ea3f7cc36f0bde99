using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Language;
using System.Management.Automation.Runspaces;

namespace ShuruStore.Commands;

/// <summary>Tab completion of the names of this session's servers.</summary>
public sealed class ServerNameCompleter : IArgumentCompleter
{
    /// <inheritdoc />
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        var pattern = WildcardPattern.Get((wordToComplete ?? string.Empty).Trim('\'', '"') + "*", WildcardOptions.IgnoreCase);
        foreach (var server in ServerRegistry.List(Runspace.DefaultRunspace))
        {
            if (pattern.IsMatch(server.Name))
                yield return new CompletionResult(server.Name, server.Name, CompletionResultType.ParameterValue, server.Uri);
        }
    }
}
