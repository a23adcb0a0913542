namespace Vsock.Integration.Tests.Cluster;

/// <summary>
/// The cluster tests start two or three daemon processes each; they run alone, after the other tests, so that
/// they neither slow the in-process tests' timing checks nor take their figures on a machine busy with them.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ClusterCollection
{
    public const string Name = "cluster nodes";
}
