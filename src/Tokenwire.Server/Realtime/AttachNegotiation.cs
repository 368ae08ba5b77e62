using Tokenwire.Protocol;
using Tokenwire.Server.Auth;
using Tokenwire.Server.Channels;
using Tokenwire.Server.Delivery;

namespace Tokenwire.Server.Realtime;

/// <summary>What an ATTACH gets, as <see cref="AttachNegotiation"/> settled it.</summary>
/// <param name="BaseName">The channel attached to: the name without its qualifier (<c>[filter=…]</c>, <c>[?params]</c>).</param>
/// <param name="Request">The attach as the channel engine takes it (granted modes, recognised params, rewind, filter).</param>
/// <param name="ExplicitModes">The client asked for modes (flags or <c>params.modes</c>) rather than the defaults.</param>
/// <param name="Echo">The <c>echo</c> param: false when the client does not want its own messages back.</param>
internal readonly record struct AttachTerms(string BaseName, AttachRequest Request, bool ExplicitModes, bool Echo);

/// <summary>
/// Reads an ATTACH frame against the connection's capability: which modes it is granted, which params Tokenwire
/// recognises (rewind, echo, modes, occupancy, delta) and whether the rewind applies. It refuses with an
/// <see cref="AblyException"/>; it neither holds nor changes state.
/// </summary>
internal static class AttachNegotiation
{
    public static AttachTerms Negotiate(string name, ProtocolMessage frame, Capability capability)
    {
        // A filtered subscription ([filter=…]name) attaches to the base channel and delivers only matching messages.
        if (ChannelName.ParseQualified(name, out var baseName, out var filter, out var qualifierParams) is { } nameError) throw new AblyException(nameError);
        var qualified = filter is null && qualifierParams is null ? null : name;
        // Params given as a qualifier ([?occupancy=metrics]name) are the channel's params; they add to the ATTACH's.
        var requested = qualifierParams is null ? frame.Params : new Dictionary<string, string>(qualifierParams.Concat(frame.Params ?? []).DistinctBy(kv => kv.Key), StringComparer.Ordinal);
        var (modes, explicitModes) = GrantModes(qualifierParams is null ? name : baseName, frame, capability);
        var parameters = RecognisedParams(requested, out var rewind, out var echo, out var delta, out var occupancy);
        if (occupancy is not null && !capability.Allows(qualifierParams is null ? name : baseName, "channel-metadata"))
        {
            throw new AblyException(ErrorCodes.OperationNotPermitted, 401, $"Occupancy events on channel '{name}' need the channel-metadata capability");
        }

        if (filter is not null) delta = false; // a delta's base would be a message the filter may have dropped
        // RTL15b / docs: rewind only applies to a fresh attach; a channelSerial means resume, and the ATTACH_RESUME
        // flag (RTL4j) means the client was attached before, so replaying the rewind would deliver messages twice.
        var freshAttach = frame.ChannelSerial is null && !frame.Flags.HasFlag(ProtocolFlags.AttachResume);
        var request = new AttachRequest(modes, parameters, frame.ChannelSerial, freshAttach ? rewind : null, delta, qualified, filter, occupancy);
        return new AttachTerms(baseName, request, explicitModes, echo);
    }

    private static (ProtocolFlags Granted, bool Explicit) GrantModes(string channel, ProtocolMessage frame, Capability capability)
    {
        var allowed = ProtocolFlags.None;
        if (capability.Allows(channel, "subscribe")) allowed |= ProtocolFlags.Subscribe | ProtocolFlags.PresenceSubscribe;
        if (capability.Allows(channel, "publish")) allowed |= ProtocolFlags.Publish;
        if (capability.Allows(channel, "presence")) allowed |= ProtocolFlags.Presence;
        if (capability.Allows(channel, "annotation-publish")) allowed |= ProtocolFlags.AnnotationPublish;
        if (capability.Allows(channel, "annotation-subscribe")) allowed |= ProtocolFlags.AnnotationSubscribe;
        if (capability.Allows(channel, "object-subscribe")) allowed |= ProtocolFlags.ObjectSubscribe;
        if (capability.Allows(channel, "object-publish")) allowed |= ProtocolFlags.ObjectPublish;
        if (allowed == ProtocolFlags.None)
        {
            throw new AblyException(ErrorCodes.OperationNotPermitted, 401, $"Attaching to channel '{channel}' is not permitted by the capability");
        }

        var requested = frame.Flags & ProtocolFlags.AllModes;
        if (frame.Params?.TryGetValue("modes", out var modeList) == true) requested = ParseModes(modeList);
        var explicitModes = requested != ProtocolFlags.None;
        if (!explicitModes) requested = ProtocolFlags.DefaultModes;
        var granted = requested & allowed;
        if (granted == ProtocolFlags.None)
        {
            throw new AblyException(ErrorCodes.OperationNotPermitted, 401, $"None of the requested modes is permitted on channel '{channel}'");
        }

        return (granted, explicitModes);
    }

    private static ProtocolFlags ParseModes(string list)
    {
        var flags = ProtocolFlags.None;
        foreach (var mode in list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            flags |= mode.ToLowerInvariant() switch
            {
                "presence" => ProtocolFlags.Presence,
                "publish" => ProtocolFlags.Publish,
                "subscribe" => ProtocolFlags.Subscribe,
                "presence_subscribe" => ProtocolFlags.PresenceSubscribe,
                "annotation_publish" => ProtocolFlags.AnnotationPublish,
                "annotation_subscribe" => ProtocolFlags.AnnotationSubscribe,
                "object_subscribe" => ProtocolFlags.ObjectSubscribe,
                "object_publish" => ProtocolFlags.ObjectPublish,
                _ => throw new AblyException(ErrorCodes.BadRequest, 400, $"Unknown channel mode '{mode}'"),
            };
        }

        return flags;
    }

    /// <summary>Keeps the params Tokenwire implements (echoed in ATTACHED, RTL4k1); unknown ones are dropped.</summary>
    private static Dictionary<string, string>? RecognisedParams(Dictionary<string, string>? parameters, out RewindSpec? rewind, out bool echo, out bool delta, out string? occupancy)
    {
        rewind = null;
        echo = true;
        delta = false;
        occupancy = null;
        if (parameters is null || parameters.Count == 0) return null;
        var kept = new Dictionary<string, string>(StringComparer.Ordinal);
        if (parameters.TryGetValue("rewind", out var r))
        {
            parameters.TryGetValue("rewindLimit", out var limit);
            rewind = RewindSpec.Parse(r, limit);
            kept["rewind"] = r;
            if (limit is not null) kept["rewindLimit"] = limit;
        }

        if (parameters.TryGetValue("echo", out var e))
        {
            echo = !string.Equals(e, "false", StringComparison.OrdinalIgnoreCase);
            kept["echo"] = e;
        }

        if (parameters.TryGetValue("modes", out var modes)) kept["modes"] = modes;

        if (parameters.TryGetValue("occupancy", out var o))
        {
            if (!OccupancyEvents.IsValidParam(o))
            {
                throw new AblyException(ErrorCodes.BadRequest, 400, $"Invalid occupancy param '{o}': use metrics or metrics.<category> ({string.Join(", ", ChannelOccupancy.Categories)})");
            }

            occupancy = o;
            kept["occupancy"] = o;
        }

        // PC3: vcdiff is the one delta format; other values are not recognised (and not echoed).
        if (parameters.TryGetValue("delta", out var d) && d == "vcdiff")
        {
            delta = true;
            kept["delta"] = d;
        }

        return kept.Count > 0 ? kept : null;
    }
}
