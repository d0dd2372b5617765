//! Lookup tables keyed by (plugin id, an id of that plugin), found without building a key:
//! a lookup borrows both strings instead of cloning them into a tuple. The ids are shared
//! (`Arc<str>`), so a snapshot of millions of de-duplication keys copies pointers, not text.

use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;

/// Values keyed by (plugin, id).
#[derive(Debug, Clone)]
pub(crate) struct PluginIndex<V> {
    by_plugin: HashMap<String, HashMap<Arc<str>, V>>,
    len: usize,
}

impl<V> Default for PluginIndex<V> {
    fn default() -> Self {
        PluginIndex {
            by_plugin: HashMap::default(),
            len: 0,
        }
    }
}

impl<V> PluginIndex<V> {
    /// The value for (plugin, id).
    pub(crate) fn get(&self, plugin: &str, id: &str) -> Option<&V> {
        self.by_plugin.get(plugin).and_then(|ids| ids.get(id))
    }

    /// Whether (plugin, id) has a value.
    pub(crate) fn contains(&self, plugin: &str, id: &str) -> bool {
        self.get(plugin, id).is_some()
    }

    /// Sets the value for (plugin, id).
    pub(crate) fn insert(&mut self, plugin: &str, id: impl Into<Arc<str>>, value: V) {
        let ids = match self.by_plugin.get_mut(plugin) {
            Some(ids) => ids,
            None => self.by_plugin.entry(plugin.to_string()).or_default(),
        };
        if ids.insert(id.into(), value).is_none() {
            self.len += 1;
        }
    }

    /// Makes room for `additional` more ids of `plugin` (a restore inserts millions at once).
    pub(crate) fn reserve(&mut self, plugin: &str, additional: usize) {
        self.by_plugin
            .entry(plugin.to_string())
            .or_default()
            .reserve(additional);
    }

    /// Removes (plugin, id).
    pub(crate) fn remove(&mut self, plugin: &str, id: &str) -> Option<V> {
        let removed = self.by_plugin.get_mut(plugin)?.remove(id);
        if removed.is_some() {
            self.len -= 1;
        }
        removed
    }

    /// How many entries.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Every (plugin, id, value), in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &Arc<str>, &V)> {
        self.by_plugin
            .iter()
            .flat_map(|(plugin, ids)| ids.iter().map(move |(id, v)| (plugin.as_str(), id, v)))
    }

    /// Keeps the entries for which `keep` is true.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&mut V) -> bool) {
        for ids in self.by_plugin.values_mut() {
            ids.retain(|_, v| keep(v));
        }
        self.len = self.by_plugin.values().map(HashMap::len).sum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_found_counted_removed_and_kept_by_plugin_and_id() {
        let mut index = PluginIndex::default();
        index.insert("voice", "a", 1);
        index.insert("voice", "b", 2);
        index.insert("chat", "a", 3);
        index.insert("chat", "a", 4);
        assert_eq!(index.len(), 3, "a replaced value is not counted twice");
        assert_eq!(index.get("voice", "a"), Some(&1));
        assert_eq!(index.get("chat", "a"), Some(&4));
        assert!(!index.contains("email", "a"));
        assert_eq!(index.remove("voice", "a"), Some(1));
        assert_eq!(index.remove("voice", "a"), None);
        assert_eq!(index.len(), 2);
        index.retain(|v| *v > 2);
        assert_eq!(index.len(), 1);
        assert!(index.contains("chat", "a") && !index.contains("voice", "b"));
    }
}
