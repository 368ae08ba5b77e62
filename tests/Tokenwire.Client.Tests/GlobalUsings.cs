global using Tokenwire.Testing;
