"""Test helpers shipped with repoproxy: fixtures, a package builder, a py-rattler driver."""
