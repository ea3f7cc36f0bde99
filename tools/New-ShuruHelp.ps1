<#
.SYNOPSIS
    Generates the module's MAML help (ShuruStore.dll-Help.xml) from the cmdlets' own metadata
    and the prose in ShuruStore.PowerShell/help/ShuruStore.Help.psd1.
.DESCRIPTION
    platyPS is not available here, so this is ours: parameter types, positions, mandatory and
    pipeline flags, the order of each syntax block (Get-Command -Syntax's) and default values
    (a fresh instance of each cmdlet) come from the code, so they can never drift from it; the
    words come from the data file, which may also describe a default the code computes at run
    time (Defaults). Fails when a cmdlet or a parameter has no text.
    Run in a fresh pwsh: it imports the staged module.
#>
param(
    [Parameter(Mandatory)][string] $ModulePath,
    [Parameter(Mandatory)][string] $HelpDataPath,
    [Parameter(Mandatory)][string] $OutFile
)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3.0
$module = Import-Module $ModulePath -PassThru -Force
$data = Import-PowerShellDataFile $HelpDataPath
# Common parameters are left to PowerShell's [<CommonParameters>], except -WhatIf and -Confirm,
# which only cmdlets that support ShouldProcess have: their syntax and parameters list them.
$common = [System.Management.Automation.PSCmdlet]::CommonParameters + 'UseTransaction'
$shouldProcessText = @{
    WhatIf  = 'Shows what would happen if the cmdlet runs. The cmdlet is not run.'
    Confirm = 'Prompts you for confirmation before running the cmdlet.'
}

$ns = @{
    maml = 'http://schemas.microsoft.com/maml/2004/10'
    command = 'http://schemas.microsoft.com/maml/dev/command/2004/10'
    dev = 'http://schemas.microsoft.com/maml/dev/2004/10'
}
$settings = [System.Xml.XmlWriterSettings]::new()
$settings.Indent = $true
$settings.Encoding = [System.Text.UTF8Encoding]::new($false)
$w = [System.Xml.XmlWriter]::Create($OutFile, $settings)

function Write-Paras([string[]] $Text) {
    foreach ($t in $Text) { $w.WriteElementString('para', $ns.maml, $t) }
}
function Write-Description([string[]] $Text) {
    $w.WriteStartElement('description', $ns.maml); Write-Paras $Text; $w.WriteEndElement()
}
function Get-PipelineInput($p) {
    $kinds = @()
    foreach ($a in $p.Attributes | Where-Object { $_ -is [System.Management.Automation.ParameterAttribute] }) {
        if ($a.ValueFromPipeline) { $kinds += 'ByValue' }
        if ($a.ValueFromPipelineByPropertyName) { $kinds += 'ByPropertyName' }
    }
    $kinds = $kinds | Select-Object -Unique
    if (@($kinds).Count) { "True ($($kinds -join ', '))" } else { 'False' }
}
# The default of a parameter as help shows it: what the data file says, else the value a fresh
# cmdlet instance holds. A size that is a whole number of MiB is written as the literal a user
# types (256MB); a value nobody set (null, 0, $false) is None, or False for a switch.
function Get-DefaultText($cmd, $param, $h) {
    if ($h.ContainsKey('Defaults') -and $h.Defaults.ContainsKey($param.Name)) { return $h.Defaults[$param.Name] }
    if ($param.Name -in $shouldProcessText.Keys) { return 'False' }
    $value = $script:Instances[$cmd.Name].($param.Name)
    if ($param.ParameterType -eq [switch]) { return "$([bool]$value)" }
    if ($null -eq $value -or ($value -is [ValueType] -and $value -eq [Activator]::CreateInstance($value.GetType()))) { return 'None' }
    if ($value -is [long] -and $value -ge 1MB -and $value % 1MB -eq 0) {
        $units = [ordered]@{ PB = 1PB; TB = 1TB; GB = 1GB; MB = 1MB }
        foreach ($u in $units.Keys) { if ($value % $units[$u] -eq 0) { return "$($value / $units[$u])$u" } }
    }
    [string]::Format([cultureinfo]::InvariantCulture, '{0}', $value)
}
function Write-Parameter($cmd, $h, $param, $setParam, [string] $text) {
    $w.WriteStartElement('parameter', $ns.command)
    $required = if ($setParam) { $setParam.IsMandatory } else { @($param.ParameterSets.Values | Where-Object IsMandatory).Count -gt 0 }
    # In the parameters list (no set), a parameter positional in some set shows that position.
    $position = if ($setParam) { $setParam.Position } else { (@($param.ParameterSets.Values.Position | Where-Object { $_ -ge 0 }) + -1)[0] }
    $w.WriteAttributeString('required', "$required".ToLower())
    $w.WriteAttributeString('globbing', "$([bool]($param.Attributes | Where-Object { $_ -is [System.Management.Automation.SupportsWildcardsAttribute] }))".ToLower())
    $w.WriteAttributeString('pipelineInput', (Get-PipelineInput $param))
    $w.WriteAttributeString('position', $(if ($position -ge 0) { "$position" } else { 'named' }))
    $w.WriteAttributeString('aliases', $(if (@($param.Aliases).Count) { $param.Aliases -join ', ' } else { 'none' }))
    $w.WriteElementString('name', $ns.maml, $param.Name)
    Write-Description $text
    if ($param.ParameterType -ne [switch]) {
        $w.WriteStartElement('parameterValue', $ns.command); $w.WriteAttributeString('required', 'true')
        $w.WriteString($param.ParameterType.Name); $w.WriteEndElement()
    }
    $w.WriteStartElement('type', $ns.dev); $w.WriteElementString('name', $ns.maml, $param.ParameterType.FullName); $w.WriteEndElement()
    $w.WriteElementString('defaultValue', $ns.dev, (Get-DefaultText $cmd $param $h))
    $w.WriteEndElement()
}

$w.WriteStartDocument()
$w.WriteStartElement('helpItems', 'http://msh')
$w.WriteAttributeString('schema', 'maml')
$script:Instances = @{}
foreach ($cmd in Get-Command -Module $module.Name -CommandType Cmdlet) { $script:Instances[$cmd.Name] = [Activator]::CreateInstance($cmd.ImplementingType) }
foreach ($cmd in Get-Command -Module $module.Name -CommandType Cmdlet | Sort-Object Name) {
    $h = $data[$cmd.Name]
    if (-not $h) { throw "No help text for $($cmd.Name) in $HelpDataPath" }
    $w.WriteStartElement('command', 'command', $ns.command)
    $w.WriteAttributeString('xmlns', 'maml', $null, $ns.maml)
    $w.WriteAttributeString('xmlns', 'dev', $null, $ns.dev)
    $w.WriteStartElement('details', $ns.command)
    $w.WriteElementString('name', $ns.command, $cmd.Name)
    $w.WriteElementString('verb', $ns.command, $cmd.Verb)
    $w.WriteElementString('noun', $ns.command, $cmd.Noun)
    Write-Description $h.Synopsis
    $w.WriteEndElement()
    Write-Description $h.Description

    $params = @($cmd.Parameters.Values | Where-Object { $_.Name -notin $common })
    foreach ($p in $params) {
        if (-not $h.Parameters.ContainsKey($p.Name) -and $p.Name -notin $shouldProcessText.Keys) { throw "No help text for $($cmd.Name) -$($p.Name)" }
    }
    $text = @{}
    foreach ($p in $params) { $text[$p.Name] = if ($h.Parameters.ContainsKey($p.Name)) { $h.Parameters[$p.Name] } else { $shouldProcessText[$p.Name] } }
    $w.WriteStartElement('syntax', $ns.command)
    foreach ($set in $cmd.ParameterSets) {
        $w.WriteStartElement('syntaxItem', $ns.command)
        $w.WriteElementString('name', $ns.maml, $cmd.Name)
        # Get-Command -Syntax's order: positional parameters by position, then the others.
        $order = [regex]::Matches($set.ToString(), '(?<=^|[\s\[])-(\w+)') | ForEach-Object { $_.Groups[1].Value }
        foreach ($name in $order | Where-Object { $_ -notin $common }) {
            $sp = $set.Parameters | Where-Object Name -EQ $name
            Write-Parameter $cmd $h $cmd.Parameters[$name] $sp $text[$name]
        }
        $w.WriteEndElement()
    }
    $w.WriteEndElement()
    $w.WriteStartElement('parameters', $ns.command)
    foreach ($p in $params) { Write-Parameter $cmd $h $p $null $text[$p.Name] }
    $w.WriteEndElement()

    $w.WriteStartElement('inputTypes', $ns.command)
    foreach ($i in $h.Inputs) {
        $w.WriteStartElement('inputType', $ns.command)
        $w.WriteStartElement('type', $ns.dev); $w.WriteElementString('name', $ns.maml, $i.Type); $w.WriteEndElement()
        Write-Description $i.Description
        $w.WriteEndElement()
    }
    $w.WriteEndElement()
    $w.WriteStartElement('returnValues', $ns.command)
    foreach ($o in $h.Outputs) {
        $w.WriteStartElement('returnValue', $ns.command)
        $w.WriteStartElement('type', $ns.dev); $w.WriteElementString('name', $ns.maml, $o.Type); $w.WriteEndElement()
        Write-Description $o.Description
        $w.WriteEndElement()
    }
    $w.WriteEndElement()

    if (@($h.Examples).Count -lt 2) { throw "$($cmd.Name) needs at least two examples" }
    $w.WriteStartElement('examples', $ns.command)
    $n = 0
    foreach ($e in $h.Examples) {
        $n++
        $w.WriteStartElement('example', $ns.command)
        $w.WriteElementString('title', $ns.maml, "-------------------------- Example $n --------------------------")
        $w.WriteElementString('code', $ns.dev, $e.Code)
        $w.WriteStartElement('remarks', $ns.dev); Write-Paras $e.Remarks; $w.WriteEndElement()
        $w.WriteEndElement()
    }
    $w.WriteEndElement()
    $w.WriteStartElement('relatedLinks', $ns.command)
    foreach ($l in $h.Links) {
        $w.WriteStartElement('navigationLink', $ns.maml); $w.WriteElementString('linkText', $ns.maml, $l); $w.WriteElementString('uri', $ns.maml, ''); $w.WriteEndElement()
    }
    $w.WriteEndElement()
    $w.WriteEndElement()
}
$w.WriteEndElement()
$w.WriteEndDocument()
$w.Close()
Write-Host "Wrote help for $(@(Get-Command -Module $module.Name).Count) cmdlets to $OutFile"
