using System.Diagnostics;

namespace ShuruStore.Core.Tests.Nbd;

/// <summary>A fact that is skipped, with the reason shown, when a real client tool is not
/// installed (tools/install-deps.sh installs them). Never passes silently without the tool.</summary>
public sealed class ToolFactAttribute : FactAttribute
{
    public ToolFactAttribute(params string[] tools)
    {
        var missing = tools.Where(t => !ExternalTool.Exists(t)).ToArray();
        if (missing.Length > 0) Skip = $"not installed: {string.Join(", ", missing)} (run tools/install-deps.sh)";
    }
}

internal static class ExternalTool
{
    public static bool Exists(string tool)
    {
        if (tool.StartsWith("python3:", StringComparison.Ordinal))
        {
            if (!File.Exists("/usr/bin/python3")) return false;
            var r = Run("/usr/bin/python3", ["-c", "import " + tool["python3:".Length..]], TimeSpan.FromSeconds(20));
            return r.ExitCode == 0;
        }
        if (tool == "linux-kernel")
            return Directory.Exists("/usr/lib/modules") && Directory.GetDirectories("/usr/lib/modules")
                .Any(d => File.Exists("/boot/vmlinuz-" + Path.GetFileName(d)));
        return tool.StartsWith('/') ? File.Exists(tool)
            : (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(d => File.Exists(Path.Combine(d, tool)));
    }

    public sealed record Result(int ExitCode, string Stdout, string Stderr)
    {
        public override string ToString() => $"exit {ExitCode}\nstdout:\n{Stdout}\nstderr:\n{Stderr}";
    }

    public static Result Run(string file, IEnumerable<string> args, TimeSpan? timeout = null)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var so = p.StandardOutput.ReadToEndAsync();
        var se = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout ?? TimeSpan.FromSeconds(60)))
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
            return new Result(-1, so.Result, se.Result + "\n(timed out and killed)");
        }
        p.WaitForExit();
        return new Result(p.ExitCode, so.Result, se.Result);
    }

    public static Result MustRun(string file, params string[] args)
    {
        var r = Run(file, args);
        Assert.True(r.ExitCode == 0, $"{file} {string.Join(' ', args)} failed: {r}");
        return r;
    }
}
