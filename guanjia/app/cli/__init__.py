"""The ``guanjia`` console script. Sub-commands import their heavy dependencies lazily."""
