namespace ShuruStore.Core.Nbd;

/// <summary>Lifecycle of an <see cref="NbdServer"/>; it only moves forward.</summary>
public enum NbdServerState
{
    Created,
    Running,
    Stopping,
    Stopped,
}
