namespace Vsock.Testing;

/// <summary>Counters of one synthetic guest, a consistent snapshot.</summary>
public readonly record struct GuestStatistics(
    long TxKicks,
    long RxKicks,
    long RxInterrupts,
    long TxInterrupts,
    long PacketsSent,
    long PacketsReceived,
    long PayloadBytesSent,
    long PayloadBytesReceived,
    long CreditUpdatesSent,
    long CreditViolations,
    long UsedTxChains,
    long UsedRxBuffers);
