using ShuruStore.Core.Threading;

namespace ShuruStore.Core.Tests.Threading;

/// <summary>Tests that change the process's thread-pool minimum run one at a time.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ThreadPoolMinimumCollection
{
    public const string Name = "thread-pool minimum";
}

/// <summary>
/// The process's thread-pool minimum: compensation for blocked threads raises it by that many
/// and gives them back; a lasting floor stays.
/// </summary>
[Collection(ThreadPoolMinimumCollection.Name)]
public class ThreadPoolFloorTests
{
    private static int MinWorkers()
    {
        ThreadPool.GetMinThreads(out int workers, out _);
        return workers;
    }

    [Fact]
    public void Compensation_raises_the_minimum_by_the_blocked_threads_and_gives_them_back()
    {
        var owner = new object();
        int before = MinWorkers();
        ThreadPoolFloor.Compensate(owner, 7);
        try
        {
            Assert.Equal(before + 7, MinWorkers());
            ThreadPoolFloor.Compensate(owner, 3);
            Assert.Equal(before + 3, MinWorkers());
        }
        finally
        {
            ThreadPoolFloor.Compensate(owner, 0);
        }
        Assert.Equal(before, MinWorkers());
    }

    [Fact]
    public void Two_owners_add_up()
    {
        object a = new(), b = new();
        int before = MinWorkers();
        ThreadPoolFloor.Compensate(a, 2);
        ThreadPoolFloor.Compensate(b, 5);
        Assert.Equal(before + 7, MinWorkers());
        ThreadPoolFloor.Compensate(a, 0);
        Assert.Equal(before + 5, MinWorkers());
        ThreadPoolFloor.Compensate(b, 0);
        Assert.Equal(before, MinWorkers());
    }

    [Fact]
    public void A_lasting_floor_stays_under_compensation_that_comes_and_goes()
    {
        var owner = new object();
        int floor = MinWorkers() + 4;
        ThreadPoolFloor.RequireAtLeast(floor);
        Assert.True(MinWorkers() >= floor);
        ThreadPoolFloor.Compensate(owner, 2);
        Assert.True(MinWorkers() >= floor + 2);
        ThreadPoolFloor.Compensate(owner, 0);
        Assert.True(MinWorkers() >= floor);
    }
}
