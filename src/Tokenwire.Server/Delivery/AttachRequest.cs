using Tokenwire.Protocol;
using Tokenwire.Server.Channels;

namespace Tokenwire.Server.Delivery;

/// <summary>An ATTACH, as a channel needs it.</summary>
/// <param name="Modes">Granted mode flags.</param>
/// <param name="Params">Recognised params, echoed in ATTACHED.</param>
/// <param name="ResumeSerial">The client's last channelSerial (resume); rewind is ignored when set.</param>
/// <param name="Rewind">Rewind request on a fresh attach.</param>
/// <param name="Delta">Deliver messages as VCDIFF deltas (<c>delta=vcdiff</c>).</param>
/// <param name="QualifiedName">For a filtered subscription (<c>[filter=…]name</c>): the name the client attached to; every
/// frame the subscriber gets is named after it.</param>
/// <param name="Filter">For a filtered subscription: the filter a message must pass to be delivered.</param>
/// <param name="Occupancy">The <c>occupancy</c> param (<c>metrics</c> or <c>metrics.&lt;category&gt;</c>): <c>[meta]occupancy</c> events.</param>
internal readonly record struct AttachRequest(
    ProtocolFlags Modes,
    Dictionary<string, string>? Params,
    string? ResumeSerial,
    RewindSpec? Rewind,
    bool Delta = false,
    string? QualifiedName = null,
    MessageFilter? Filter = null,
    string? Occupancy = null);

/// <summary>Where an attachment starts, as the engine found it.</summary>
/// <param name="ChannelSerial">The ATTACHED frame's channelSerial: the resume point, or the channel's current position.</param>
/// <param name="Resumed">Continuity held from the client's channelSerial (RTL15b): ATTACHED carries RESUMED.</param>
/// <param name="Error">A non-fatal attach error (continuity lost, rewind truncated), carried on ATTACHED.</param>
internal readonly record struct AttachOutcome(string ChannelSerial, bool Resumed, ErrorInfo? Error);
