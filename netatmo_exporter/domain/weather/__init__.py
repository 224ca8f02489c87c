"""Weather stations and Home Coaches: readings, modules, labels, the refresher and its schedule."""
