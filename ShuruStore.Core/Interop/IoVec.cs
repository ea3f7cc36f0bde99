using System.Runtime.InteropServices;

namespace ShuruStore.Core.Interop;

/// <summary>struct iovec: one buffer of a vectored read or write.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct IoVec
{
    public byte* Base;
    public nuint Length;
}
