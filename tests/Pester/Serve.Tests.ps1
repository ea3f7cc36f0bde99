# The README's main job, as a user runs it in a terminal: build.ps1 -Task Serve serves the sample
# image, real clients see it, Ctrl+C stops it and removes the socket. tmux is the terminal.
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $script:Session = 'shuru-serve-' + [guid]::NewGuid().ToString('N').Substring(0, 6)
    $script:Socket = "/tmp/$Session.sock"
    $script:Sample = Join-Path $RepoRoot 'out/serve/sample-rootfs.ext4'

    function Get-Screen { (& tmux capture-pane -p -t $Session) -join "`n" }
    function Wait-Screen([string] $Pattern, [int] $Seconds = 120) {
        $deadline = [DateTime]::UtcNow.AddSeconds($Seconds)
        while ([DateTime]::UtcNow -lt $deadline) {
            $screen = Get-Screen
            if ($screen -match $Pattern) { return $screen }
            Start-Sleep -Milliseconds 250
        }
        throw "Timed out waiting for '$Pattern'. Screen:`n$(Get-Screen)"
    }
}
AfterAll {
    & tmux kill-session -t $Session 2>$null
}

Describe 'build.ps1 -Task Serve' {
    It 'serves the generated sample image until Ctrl+C, then removes the socket' {
        $cmd = "cd '$RepoRoot' && dotnet pwsh -NoProfile -File ./build.ps1 -Task Serve -NoBuild -SocketPath $Socket; echo SERVE-EXIT=`$?; sleep 60"
        & tmux new-session -d -s $Session -x 200 -y 60 $cmd
        $LASTEXITCODE | Should -Be 0
        Wait-Screen 'Press Ctrl\+C to stop' | Should -Match ([regex]::Escape("nbd+unix:///export?socket=$Socket"))
        $uri = "nbd+unix:///export?socket=$Socket"
        (Invoke-Client nbdinfo --json $uri | ConvertFrom-Json).exports[0].'export-size' | Should -Be 64MB
        Invoke-Client qemu-img compare -f raw -F raw $Sample $uri | Should -Match 'identical'
        & tmux send-keys -t $Session C-c
        Wait-Screen 'SERVE-EXIT=' 60 | Should -Match 'Stopped; socket .* removed'
        Get-Screen | Should -Match 'SERVE-EXIT=0'
        Test-Path $Socket | Should -BeFalse
    }
}
