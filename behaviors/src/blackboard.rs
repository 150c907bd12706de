//! The blackboard: typed values in slots. Keys are resolved to slots when a tree is built
//! (subtree scopes and remapping included), so ticking never looks a name up.

use crate::script::{Env, Slot};
use crate::value::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default)]
pub struct Blackboard {
    values: Vec<Option<Value>>,
    /// Qualified name of each slot (`goal`, `DoorClosed#3/target`), for records and errors.
    names: Vec<String>,
    /// Slots of the main tree's keys by name.
    root_keys: BTreeMap<String, Slot>,
    /// Values set when the tree is built (subtree literal remaps, `set_initial`).
    initial: Vec<(Slot, Value)>,
}

impl Blackboard {
    pub(crate) fn new_slot(&mut self, qualified: String, root_key: Option<&str>) -> Slot {
        let slot = self.values.len() as Slot;
        self.values.push(None);
        self.names.push(qualified);
        if let Some(k) = root_key {
            self.root_keys.insert(k.to_string(), slot);
        }
        slot
    }

    pub(crate) fn add_initial(&mut self, slot: Slot, v: Value) {
        self.values[slot as usize] = Some(v.clone());
        self.initial.push((slot, v));
    }

    /// Back to the values the tree was built with.
    pub fn reset(&mut self) {
        for v in &mut self.values {
            *v = None;
        }
        for (s, v) in &self.initial {
            self.values[*s as usize] = Some(v.clone());
        }
    }

    pub fn slot_name(&self, slot: Slot) -> &str {
        self.names.get(slot as usize).map(String::as_str).unwrap_or("?")
    }

    /// A key of the main tree.
    pub fn get_key(&self, key: &str) -> Option<&Value> {
        self.root_keys.get(key).and_then(|s| self.values[*s as usize].as_ref())
    }

    /// Sets a key of the main tree that the tree uses; returns false if no node uses it.
    pub fn set_key(&mut self, key: &str, value: Value) -> bool {
        match self.root_keys.get(key) {
            Some(s) => {
                self.values[*s as usize] = Some(value);
                true
            }
            None => false,
        }
    }

    /// Every set slot with its qualified name, in slot order.
    pub fn dump(&self) -> Vec<(&str, &Value)> {
        self.names.iter().zip(&self.values).filter_map(|(n, v)| v.as_ref().map(|v| (n.as_str(), v))).collect()
    }

    pub fn unset(&mut self, slot: Slot) {
        if let Some(v) = self.values.get_mut(slot as usize) {
            *v = None;
        }
    }
}

impl Env for Blackboard {
    fn get(&self, slot: Slot) -> Option<&Value> {
        self.values.get(slot as usize).and_then(Option::as_ref)
    }
    fn set(&mut self, slot: Slot, value: Value) {
        if let Some(v) = self.values.get_mut(slot as usize) {
            *v = Some(value);
        }
    }
}
