using System.Globalization;
using System.Text;
using System.Text.Json;
using Tokenwire.Protocol;

namespace Tokenwire.Server.Channels;

/// <summary>
/// A subscription filter (Ably "filtered channels", ably-js <c>channels.getDerived(name, {filter})</c>): a JMESPath-style
/// boolean expression over a message's <c>name</c>, <c>clientId</c> and <c>headers</c> (its <c>extras.headers</c>).
/// Supported: field paths (<c>headers.number</c>, <c>headers."x-y"</c>), JSON literals in backticks (<c>`26095`</c>,
/// <c>`"text"`</c>), raw strings in single quotes, <c>== != &lt; &lt;= &gt; &gt;=</c>, <c>&amp;&amp; || !</c> and
/// parentheses. A missing field is null; ordering compares numbers only; truthiness is JMESPath's (false, null, "",
/// [] and {} are false).
/// </summary>
internal sealed class MessageFilter
{
    private readonly Node _root;

    private MessageFilter(Node root) => _root = root;

    /// <summary>Parses an expression; null and an error (40010-style 400) when it is not valid.</summary>
    public static MessageFilter? TryParse(string expression, out string? error)
    {
        try
        {
            var parser = new Parser(expression);
            var root = parser.ParseExpression();
            parser.ExpectEnd();
            error = null;
            return new MessageFilter(root);
        }
        catch (FormatException e)
        {
            error = e.Message;
            return null;
        }
    }

    /// <summary>True when the message passes the filter.</summary>
    public bool Matches(Message message)
    {
        JsonElement? headers = null;
        if (message.Extras is { } extras)
        {
            try
            {
                var root = extras.ToJsonElement();
                if (root.ValueKind == JsonValueKind.Object && root.TryGetProperty("headers", out var h)) headers = h;
            }
            catch (JsonException)
            {
                // Unreadable extras have no headers.
            }
        }

        return Truthy(_root.Evaluate(new Scope(message, headers)));
    }

    private readonly record struct Scope(Message Message, JsonElement? Headers);

    // Values: null, bool, double, string, or a JsonElement (object or array).
    private static bool Truthy(object? v) => v switch
    {
        null => false,
        bool b => b,
        string s => s.Length > 0,
        double => true,
        JsonElement e => e.ValueKind switch
        {
            JsonValueKind.Array => e.GetArrayLength() > 0,
            JsonValueKind.Object => e.EnumerateObject().Any(),
            _ => true,
        },
        _ => true,
    };

    private static object? FromJson(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.String => e.GetString(),
        JsonValueKind.Number => e.GetDouble(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        JsonValueKind.Null or JsonValueKind.Undefined => null,
        _ => e.Clone(),
    };

    private static bool ValuesEqual(object? a, object? b) => (a, b) switch
    {
        (null, null) => true,
        (double x, double y) => x == y,
        (string x, string y) => string.Equals(x, y, StringComparison.Ordinal),
        (bool x, bool y) => x == y,
        (JsonElement x, JsonElement y) => JsonElement.DeepEquals(x, y),
        _ => false,
    };

    private abstract class Node
    {
        public abstract object? Evaluate(Scope scope);
    }

    private sealed class Literal(object? value) : Node
    {
        public override object? Evaluate(Scope scope) => value;
    }

    private sealed class Field(IReadOnlyList<string> path) : Node
    {
        public override object? Evaluate(Scope scope)
        {
            switch (path[0])
            {
                case "name" when path.Count == 1: return scope.Message.Name;
                case "clientId" when path.Count == 1: return scope.Message.ClientId;
                case "headers":
                    if (scope.Headers is not { } current) return null;
                    for (var i = 1; i < path.Count; i++)
                    {
                        if (current.ValueKind != JsonValueKind.Object || !current.TryGetProperty(path[i], out current)) return null;
                    }

                    return FromJson(current);
                default: return null;
            }
        }
    }

    private sealed class Not(Node operand) : Node
    {
        public override object? Evaluate(Scope scope) => !Truthy(operand.Evaluate(scope));
    }

    private sealed class Logical(bool isAnd, Node left, Node right) : Node
    {
        public override object? Evaluate(Scope scope) =>
            isAnd ? Truthy(left.Evaluate(scope)) && Truthy(right.Evaluate(scope)) : Truthy(left.Evaluate(scope)) || Truthy(right.Evaluate(scope));
    }

    private sealed class Comparison(string op, Node left, Node right) : Node
    {
        public override object? Evaluate(Scope scope)
        {
            var a = left.Evaluate(scope);
            var b = right.Evaluate(scope);
            switch (op)
            {
                case "==": return ValuesEqual(a, b);
                case "!=": return !ValuesEqual(a, b);
            }

            if (a is not double x || b is not double y) return null; // JMESPath: ordering of non-numbers is null
            return op switch
            {
                "<" => x < y,
                "<=" => x <= y,
                ">" => x > y,
                _ => x >= y,
            };
        }
    }

    private sealed class Parser(string text)
    {
        private int _pos;

        public void ExpectEnd()
        {
            SkipSpace();
            if (_pos < text.Length) throw Error($"unexpected '{text[_pos]}'");
        }

        public Node ParseExpression() => ParseOr();

        private Node ParseOr()
        {
            var left = ParseAnd();
            while (Take("||")) left = new Logical(false, left, ParseAnd());
            return left;
        }

        private Node ParseAnd()
        {
            var left = ParseNot();
            while (Take("&&")) left = new Logical(true, left, ParseNot());
            return left;
        }

        private Node ParseNot()
        {
            SkipSpace();
            if (_pos < text.Length && text[_pos] == '!' && !(_pos + 1 < text.Length && text[_pos + 1] == '='))
            {
                _pos++;
                return new Not(ParseNot());
            }

            return ParseComparison();
        }

        private Node ParseComparison()
        {
            var left = ParsePrimary();
            foreach (var op in (string[])["==", "!=", "<=", ">=", "<", ">"])
            {
                if (Take(op)) return new Comparison(op, left, ParsePrimary());
            }

            return left;
        }

        private Node ParsePrimary()
        {
            SkipSpace();
            if (_pos >= text.Length) throw Error("unexpected end of expression");
            var c = text[_pos];
            if (c == '(')
            {
                _pos++;
                var inner = ParseExpression();
                if (!Take(")")) throw Error("missing ')'");
                return inner;
            }

            if (c == '`') return new Literal(ParseJsonLiteral());
            if (c == '\'') return new Literal(ParseRawString());
            if (c == '"' || IsIdentifierStart(c)) return ParseField();
            throw Error($"unexpected '{c}'");
        }

        private Field ParseField()
        {
            var path = new List<string> { ParseIdentifier() };
            while (true)
            {
                SkipSpace();
                if (_pos >= text.Length || text[_pos] != '.') break;
                _pos++;
                SkipSpace();
                path.Add(ParseIdentifier());
            }

            if (path[0] is not ("name" or "clientId" or "headers")) throw Error($"unknown field '{path[0]}' (use name, clientId or headers)");
            return new Field(path);
        }

        private string ParseIdentifier()
        {
            if (_pos < text.Length && text[_pos] == '"')
            {
                var start = _pos++;
                while (_pos < text.Length && text[_pos] != '"') _pos += text[_pos] == '\\' ? 2 : 1;
                if (_pos >= text.Length) throw Error("unterminated quoted identifier");
                _pos++;
                try
                {
                    return JsonSerializer.Deserialize<string>(text.AsSpan(start, _pos - start))!;
                }
                catch (JsonException)
                {
                    throw Error("invalid quoted identifier");
                }
            }

            if (_pos >= text.Length || !IsIdentifierStart(text[_pos])) throw Error("identifier expected");
            var begin = _pos;
            while (_pos < text.Length && (IsIdentifierStart(text[_pos]) || char.IsAsciiDigit(text[_pos]))) _pos++;
            return text[begin.._pos];
        }

        private object? ParseJsonLiteral()
        {
            var sb = new StringBuilder();
            _pos++; // opening backtick
            while (_pos < text.Length && text[_pos] != '`')
            {
                if (text[_pos] == '\\' && _pos + 1 < text.Length && text[_pos + 1] == '`') _pos++;
                sb.Append(text[_pos++]);
            }

            if (_pos >= text.Length) throw Error("unterminated literal");
            _pos++;
            try
            {
                using var doc = JsonDocument.Parse(sb.ToString());
                return FromJson(doc.RootElement);
            }
            catch (JsonException)
            {
                // JMESPath's legacy form: an unquoted literal is a string.
                var raw = sb.ToString().Trim();
                if (raw.Length == 0) throw Error("empty literal");
                return raw;
            }
        }

        private string ParseRawString()
        {
            var sb = new StringBuilder();
            _pos++;
            while (_pos < text.Length && text[_pos] != '\'')
            {
                if (text[_pos] == '\\' && _pos + 1 < text.Length && text[_pos + 1] is '\'' or '\\') _pos++;
                sb.Append(text[_pos++]);
            }

            if (_pos >= text.Length) throw Error("unterminated string");
            _pos++;
            return sb.ToString();
        }

        private bool Take(string token)
        {
            SkipSpace();
            if (string.CompareOrdinal(text, _pos, token, 0, token.Length) != 0) return false;
            _pos += token.Length;
            return true;
        }

        private void SkipSpace()
        {
            while (_pos < text.Length && char.IsWhiteSpace(text[_pos])) _pos++;
        }

        private static bool IsIdentifierStart(char c) => char.IsAsciiLetter(c) || c == '_';

        private FormatException Error(string message) =>
            new(string.Create(CultureInfo.InvariantCulture, $"Invalid filter expression at position {_pos}: {message}"));
    }
}
