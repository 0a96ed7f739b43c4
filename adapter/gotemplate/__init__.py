"""Go's text/template, ported so that rendered queries match the Go adapter byte for byte:
lexer, parser, compiler and executor, fmt verbs, builtins, strconv and errors."""
