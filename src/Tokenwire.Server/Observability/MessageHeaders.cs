using System.Text.Json;

namespace Tokenwire.Server.Observability;

/// <summary>
/// Reads the few <c>extras.headers</c> entries observability needs, in one pass over the extras' UTF-8 JSON and without
/// building a document or allocating: a response id (copied into the caller's buffer) and whether a <c>status</c>
/// header holds one of the end statuses.
/// </summary>
internal static class MessageHeaders
{
    /// <summary>Scans <paramref name="extrasJson"/>.</summary>
    /// <param name="extrasJson">The message's extras as JSON.</param>
    /// <param name="idHeader">The response id header (<c>responseId</c>).</param>
    /// <param name="idBuffer">Where the response id's characters go.</param>
    /// <param name="endStatuses">Status values that end a response.</param>
    /// <param name="idLength">The response id's length; 0 when absent, -1 when longer than the buffer.</param>
    /// <param name="endStatus">True when the status header holds one of <paramref name="endStatuses"/>.</param>
    public static void Scan(ReadOnlySpan<byte> extrasJson, string idHeader, Span<char> idBuffer, List<string> endStatuses, out int idLength, out bool endStatus)
    {
        idLength = 0;
        endStatus = false;
        if (extrasJson.IndexOf("\"headers\""u8) < 0) return;
        var reader = new Utf8JsonReader(extrasJson);
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) return;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var isHeaders = reader.ValueTextEquals("headers"u8);
                reader.Read();
                if (!isHeaders || reader.TokenType != JsonTokenType.StartObject)
                {
                    reader.Skip();
                    continue;
                }

                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                {
                    var isId = reader.ValueTextEquals(idHeader);
                    var isStatus = !isId && reader.ValueTextEquals("status"u8);
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.String)
                    {
                        if (isId)
                        {
                            var length = reader.HasValueSequence ? reader.ValueSequence.Length : reader.ValueSpan.Length;
                            idLength = length > idBuffer.Length ? -1 : reader.CopyString(idBuffer);
                        }
                        else if (isStatus)
                        {
                            foreach (var status in endStatuses)
                            {
                                if (reader.ValueTextEquals(status)) endStatus = true;
                            }
                        }
                    }

                    reader.Skip();
                }

                return;
            }
        }
        catch (JsonException)
        {
        }
    }
}
