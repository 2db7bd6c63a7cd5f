"""The UI's views; :mod:`.base` gives every template what the layout needs."""
