using Microsoft.Extensions.Logging;
using Tokenwire.Protocol;

namespace Tokenwire.Server.Push;

/// <summary>
/// Routes notifications to the <see cref="IPushTransport"/> of each recipient's transport type and records the outcome
/// on registered devices (<c>push.state</c> <c>ACTIVE</c> / <c>FAILING</c> with <c>push.error</c>).
/// </summary>
internal sealed partial class PushDeliverer
{
    private readonly Dictionary<string, IPushTransport> _transports = new(StringComparer.Ordinal);
    private readonly IPushStore _store;
    private readonly ILogger<PushDeliverer> _logger;

    public PushDeliverer(IEnumerable<IPushTransport> transports, IPushStore store, ILogger<PushDeliverer> logger)
    {
        _store = store;
        _logger = logger;
        foreach (var transport in transports)
        {
            if (!_transports.TryAdd(transport.TransportType, transport))
            {
                throw new InvalidOperationException($"Two push transports serve transportType '{transport.TransportType}': {_transports[transport.TransportType].GetType().Name} and {transport.GetType().Name}");
            }
        }
    }

    /// <summary>The transport for <paramref name="transportType"/> (<c>gcm</c> → <c>fcm</c>), or null.</summary>
    public IPushTransport? TransportFor(string transportType) => _transports.GetValueOrDefault(PushRecipients.Canonical(transportType));

    /// <summary>Throws 40000 for a recipient no transport could deliver to.</summary>
    public void ValidateRecipient(IReadOnlyDictionary<string, object?> recipient) => PushRecipients.Validate(recipient, TransportFor);

    /// <summary>Delivers to a registered device and records the outcome on it; returns the failure, or null.</summary>
    public async Task<ErrorInfo?> DeliverToDeviceAsync(PushDevice device, IReadOnlyDictionary<string, object?> payload, CancellationToken cancellationToken)
    {
        var error = await TryDeliverAsync(new PushDelivery(device.AppId, device.Id, device.ClientId, device.Recipient, payload), cancellationToken).ConfigureAwait(false);
        if (error is not null)
        {
            LogDeviceDeliveryFailed(_logger, device.AppId, device.Id, error.Code, error.Message);
            await _store.SetDeviceStateAsync(device.AppId, device.Id, PushDeviceState.Failing, error, cancellationToken).ConfigureAwait(false);
        }
        else if (device.State != PushDeviceState.Active || device.Error is not null)
        {
            await _store.SetDeviceStateAsync(device.AppId, device.Id, PushDeviceState.Active, null, cancellationToken).ConfigureAwait(false);
        }

        return error;
    }

    /// <summary>Delivers to a raw recipient (a direct publish that names the push service address); throws its failure.</summary>
    public async Task DeliverToRecipientAsync(string appId, IReadOnlyDictionary<string, object?> recipient, IReadOnlyDictionary<string, object?> payload, CancellationToken cancellationToken)
    {
        if (await TryDeliverAsync(new PushDelivery(appId, null, null, recipient, payload), cancellationToken).ConfigureAwait(false) is { } error)
        {
            throw new AblyException(error);
        }
    }

    private async Task<ErrorInfo?> TryDeliverAsync(PushDelivery delivery, CancellationToken cancellationToken)
    {
        var type = delivery.Recipient.GetValueOrDefault("transportType") as string ?? string.Empty;
        if (TransportFor(type) is not { } transport)
        {
            PushMetrics.Failed.Add(1);
            return new ErrorInfo(ErrorCodes.PushTransportNotConfigured, 400, $"No push transport is configured for transportType '{type}' on this server");
        }

        try
        {
            await transport.DeliverAsync(delivery, cancellationToken).ConfigureAwait(false);
            PushMetrics.Delivered.Add(1);
            return null;
        }
        catch (AblyException e)
        {
            PushMetrics.Failed.Add(1);
            return e.Error;
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            PushMetrics.Failed.Add(1);
            LogTransportCrashed(_logger, e, type);
            return new ErrorInfo(ErrorCodes.InternalError, 500, $"Push transport '{type}' failed: {e.Message}");
        }
    }

    [LoggerMessage(EventId = 611, Level = LogLevel.Warning, Message = "Push delivery to device {DeviceId} of app {AppId} failed: {Code} {Reason}")]
    private static partial void LogDeviceDeliveryFailed(ILogger logger, string appId, string deviceId, int code, string reason);

    [LoggerMessage(EventId = 612, Level = LogLevel.Error, Message = "Push transport '{TransportType}' threw")]
    private static partial void LogTransportCrashed(ILogger logger, Exception exception, string transportType);
}
