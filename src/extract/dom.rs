//! The parsed page the extraction walks: html5ever's tree builder (the HTML standard's
//! parsing, as a browser builds the tree: implied and misnested tags, tables, templates)
//! writing into a compact arena of its own. Elements keep their name and attributes as the
//! tokenizer gave them (no map, no interned class lists); text nodes keep the tokenizer's
//! tendrils, adjacent text merged as a DOM merges it; comments, doctypes and processing
//! instructions are kept only as nodes that are not walked. `<template>` content is a
//! fragment node, the template element's first child (where scraper, used before, put it).
//!
//! Nothing here panics on any input: a handle the tree builder passes is always one this
//! sink created, and a lookup that finds none does nothing.

use std::borrow::Cow;

use html5ever::tendril::{StrTendril, TendrilSink};
use html5ever::tree_builder::{ElementFlags, NodeOrText, QuirksMode, TreeSink};
use html5ever::{Attribute, ExpandedName, LocalName, Namespace, QualName};

use super::visible::ElementView;

/// A node's index in the arena.
pub type NodeId = u32;

/// An element: its name and attributes (names as the parser stores them: lower case).
#[derive(Debug)]
pub struct Element {
    pub name: QualName,
    pub attrs: Vec<Attribute>,
}

impl ElementView for Element {
    fn name(&self) -> &str {
        &self.name.local
    }

    fn attrs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.attrs.iter().map(|a| (&*a.name.local, &*a.value))
    }

    /// Ordinary HTML attributes only (no namespace: not `xlink:href` in SVG).
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.name.ns.is_empty() && &*a.name.local == name)
            .map(|a| &*a.value)
    }
}

/// What a node is.
#[derive(Debug)]
pub enum Node {
    Document,
    Element(Element),
    Text(StrTendril),
    /// The content of a `<template>`.
    Fragment,
    /// A comment, doctype or processing instruction: never shown.
    Other,
}

#[derive(Debug)]
struct Slot {
    node: Node,
    parent: Option<NodeId>,
    prev: Option<NodeId>,
    next: Option<NodeId>,
    first: Option<NodeId>,
    last: Option<NodeId>,
}

/// A parsed document.
#[derive(Debug)]
pub struct Dom {
    slots: Vec<Slot>,
    /// What `elem_name` answers for a handle that is not an element (the tree builder asks
    /// only about elements).
    no_name: QualName,
}

/// Parse a whole HTML document.
pub fn parse(html: &str) -> Dom {
    html5ever::parse_document(Dom::new(html.len()), Default::default()).one(html)
}

impl Dom {
    fn new(input_len: usize) -> Dom {
        // About one node per 24 bytes of markup on ordinary pages; reserving it saves regrowing
        // (and copying) the arena while parsing.
        let mut slots = Vec::with_capacity(input_len / 24 + 8);
        slots.push(Slot::new(Node::Document));
        Dom {
            slots,
            no_name: QualName::new(None, Namespace::from(""), LocalName::from("")),
        }
    }

    /// The document node.
    pub fn root(&self) -> NodeId {
        0
    }

    /// What node `id` is (`Other` for an id not in the arena).
    pub fn node(&self, id: NodeId) -> &Node {
        self.slots
            .get(id as usize)
            .map_or(&Node::Other, |s| &s.node)
    }

    pub fn first_child(&self, id: NodeId) -> Option<NodeId> {
        self.slots.get(id as usize)?.first
    }

    pub fn next_sibling(&self, id: NodeId) -> Option<NodeId> {
        self.slots.get(id as usize)?.next
    }

    pub fn parent(&self, id: NodeId) -> Option<NodeId> {
        self.slots.get(id as usize)?.parent
    }

    /// The children of `id`, in order.
    pub fn children(&self, id: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        std::iter::successors(self.first_child(id), move |c| self.next_sibling(*c))
    }

    fn add(&mut self, node: Node) -> NodeId {
        let id = NodeId::try_from(self.slots.len()).unwrap_or(NodeId::MAX);
        if id < NodeId::MAX {
            self.slots.push(Slot::new(node));
        }
        id
    }

    fn slot(&mut self, id: NodeId) -> Option<&mut Slot> {
        self.slots.get_mut(id as usize)
    }

    /// Take `id` out of its parent's children.
    fn detach(&mut self, id: NodeId) {
        let Some(s) = self.slot(id) else { return };
        let (parent, prev, next) = (s.parent.take(), s.prev.take(), s.next.take());
        if let Some(p) = prev.and_then(|p| self.slot(p)) {
            p.next = next;
        } else if let Some(parent) = parent.and_then(|p| self.slot(p)) {
            parent.first = next;
        }
        if let Some(n) = next.and_then(|n| self.slot(n)) {
            n.prev = prev;
        } else if let Some(parent) = parent.and_then(|p| self.slot(p)) {
            parent.last = prev;
        }
    }

    /// Make the detached node `child` the last child of `parent`.
    fn append_id(&mut self, parent: NodeId, child: NodeId) {
        if parent == child || self.slot(parent).is_none() || self.slot(child).is_none() {
            return;
        }
        self.detach(child);
        let last = self.slots[parent as usize].last;
        {
            let c = &mut self.slots[child as usize];
            c.parent = Some(parent);
            c.prev = last;
        }
        match last {
            Some(l) => self.slots[l as usize].next = Some(child),
            None => self.slots[parent as usize].first = Some(child),
        }
        self.slots[parent as usize].last = Some(child);
    }

    /// Put the node `new` right before `sibling`, under the same parent.
    fn insert_before(&mut self, sibling: NodeId, new: NodeId) {
        if sibling == new || self.slot(new).is_none() {
            return;
        }
        self.detach(new);
        let Some(s) = self.slot(sibling) else { return };
        let (parent, prev) = (s.parent, s.prev);
        let Some(parent) = parent else { return };
        s.prev = Some(new);
        {
            let n = &mut self.slots[new as usize];
            n.parent = Some(parent);
            n.prev = prev;
            n.next = Some(sibling);
        }
        match prev {
            Some(p) => self.slots[p as usize].next = Some(new),
            None => {
                if let Some(p) = self.slot(parent) {
                    p.first = Some(new);
                }
            }
        }
    }

    /// Append `text` to the text node `id` if it is one.
    fn merge_text(&mut self, id: Option<NodeId>, text: &StrTendril) -> bool {
        match id.and_then(|id| self.slot(id)).map(|s| &mut s.node) {
            Some(Node::Text(t)) => {
                t.push_tendril(text);
                true
            }
            _ => false,
        }
    }
}

impl Slot {
    fn new(node: Node) -> Slot {
        Slot {
            node,
            parent: None,
            prev: None,
            next: None,
            first: None,
            last: None,
        }
    }
}

impl TreeSink for Dom {
    type Handle = NodeId;
    type Output = Dom;

    fn finish(self) -> Dom {
        self
    }

    fn parse_error(&mut self, _msg: Cow<'static, str>) {}

    fn get_document(&mut self) -> NodeId {
        self.root()
    }

    fn elem_name<'a>(&'a self, target: &'a NodeId) -> ExpandedName<'a> {
        match self.node(*target) {
            Node::Element(e) => e.name.expanded(),
            _ => self.no_name.expanded(),
        }
    }

    fn create_element(&mut self, name: QualName, attrs: Vec<Attribute>, _: ElementFlags) -> NodeId {
        let template = &*name.ns == "http://www.w3.org/1999/xhtml" && &*name.local == "template";
        let id = self.add(Node::Element(Element { name, attrs }));
        if template {
            let content = self.add(Node::Fragment);
            self.append_id(id, content);
        }
        id
    }

    fn create_comment(&mut self, _text: StrTendril) -> NodeId {
        self.add(Node::Other)
    }

    fn create_pi(&mut self, _target: StrTendril, _data: StrTendril) -> NodeId {
        self.add(Node::Other)
    }

    fn append(&mut self, parent: &NodeId, child: NodeOrText<NodeId>) {
        match child {
            NodeOrText::AppendNode(id) => self.append_id(*parent, id),
            NodeOrText::AppendText(text) => {
                let last = self.slot(*parent).and_then(|p| p.last);
                if !self.merge_text(last, &text) {
                    let id = self.add(Node::Text(text));
                    self.append_id(*parent, id);
                }
            }
        }
    }

    fn append_based_on_parent_node(
        &mut self,
        element: &NodeId,
        prev_element: &NodeId,
        child: NodeOrText<NodeId>,
    ) {
        if self.parent(*element).is_some() {
            self.append_before_sibling(element, child);
        } else {
            self.append(prev_element, child);
        }
    }

    fn append_doctype_to_document(&mut self, _: StrTendril, _: StrTendril, _: StrTendril) {
        let id = self.add(Node::Other);
        self.append_id(self.root(), id);
    }

    fn get_template_contents(&mut self, target: &NodeId) -> NodeId {
        // Every template element got its fragment when it was created.
        self.first_child(*target).unwrap_or(*target)
    }

    fn same_node(&self, x: &NodeId, y: &NodeId) -> bool {
        x == y
    }

    fn set_quirks_mode(&mut self, _mode: QuirksMode) {}

    fn append_before_sibling(&mut self, sibling: &NodeId, new_node: NodeOrText<NodeId>) {
        if let NodeOrText::AppendNode(id) = &new_node {
            self.detach(*id);
        }
        if self.parent(*sibling).is_none() {
            return;
        }
        match new_node {
            NodeOrText::AppendNode(id) => self.insert_before(*sibling, id),
            NodeOrText::AppendText(text) => {
                let prev = self.slot(*sibling).and_then(|s| s.prev);
                if !self.merge_text(prev, &text) {
                    let id = self.add(Node::Text(text));
                    self.insert_before(*sibling, id);
                }
            }
        }
    }

    fn add_attrs_if_missing(&mut self, target: &NodeId, attrs: Vec<Attribute>) {
        if let Some(Slot {
            node: Node::Element(e),
            ..
        }) = self.slot(*target)
        {
            for a in attrs {
                if !e.attrs.iter().any(|have| have.name == a.name) {
                    e.attrs.push(a);
                }
            }
        }
    }

    fn remove_from_parent(&mut self, target: &NodeId) {
        self.detach(*target);
    }

    fn reparent_children(&mut self, node: &NodeId, new_parent: &NodeId) {
        while let Some(child) = self.first_child(*node) {
            self.append_id(*new_parent, child);
        }
    }
}

#[cfg(test)]
pub(in crate::extract) mod tests {
    use super::*;

    /// The tree as nested text: elements by name, text in quotes.
    fn outline(dom: &Dom, id: NodeId, out: &mut String) {
        match dom.node(id) {
            Node::Element(e) => {
                out.push('<');
                out.push_str(e.name());
                out.push('>');
            }
            Node::Text(t) => {
                out.push('"');
                out.push_str(t);
                out.push('"');
            }
            Node::Fragment => out.push_str("#fragment"),
            Node::Document | Node::Other => {}
        }
        let children: Vec<NodeId> = dom.children(id).collect();
        if !children.is_empty() {
            out.push('(');
            for c in children {
                outline(dom, c, out);
            }
            out.push(')');
        }
    }

    fn tree(html: &str) -> String {
        let dom = parse(html);
        let mut s = String::new();
        outline(&dom, dom.root(), &mut s);
        s
    }

    #[test]
    fn the_tree_builder_places_nodes_as_a_browser_does() {
        // Misnested formatting (the adoption agency moves and clones elements).
        assert_eq!(
            tree("<p>a<b>b<i>c</b>d</i>e</p>"),
            "(<html>(<head><body>(<p>(\"a\"<b>(\"b\"<i>(\"c\"))<i>(\"d\")\"e\"))))"
        );
        // Text directly in a table is moved out before it (foster parenting).
        assert_eq!(
            tree("<table>x<tr><td>y</td></tr></table>"),
            "(<html>(<head><body>(\"x\"<table>(<tbody>(<tr>(<td>(\"y\")))))))"
        );
        // Template content is a fragment under the template.
        assert_eq!(
            tree("<body><template><p>t</p></template>"),
            "(<html>(<head><body>(<template>(#fragment(<p>(\"t\"))))))"
        );
        // Adjacent text merges into one node.
        assert_eq!(
            tree("<p>a<!--c-->b</p>"),
            "(<html>(<head><body>(<p>(\"a\"\"b\"))))"
        );
        assert_eq!(
            tree("<p>a&amp;b</p>"),
            "(<html>(<head><body>(<p>(\"a&b\"))))"
        );
    }

    /// The same outline from scraper's DOM (html5ever's tree builder into ego_tree).
    fn scraper_outline(node: ego_tree::NodeRef<'_, scraper::Node>, out: &mut String) {
        match node.value() {
            scraper::Node::Element(e) => {
                out.push('<');
                out.push_str(e.name());
                out.push('>');
            }
            scraper::Node::Text(t) => {
                out.push('"');
                out.push_str(&t.text);
                out.push('"');
            }
            scraper::Node::Fragment => out.push_str("#fragment"),
            _ => {}
        }
        if node.has_children() {
            out.push('(');
            for c in node.children() {
                scraper_outline(c, out);
            }
            out.push(')');
        }
    }

    /// Tag soup: misnesting, tables, templates, foreign content, raw text, stray markup
    /// (also the start of the stream's vocabulary).
    pub(in crate::extract) const PIECES: &[&str] = &[
        "<p>",
        "</p>",
        "<b>",
        "</b>",
        "<i>",
        "</i>",
        "<a href=x>",
        "</a>",
        "<table>",
        "</table>",
        "<tr>",
        "</tr>",
        "<td>",
        "</td>",
        "<div class=footer>",
        "</div>",
        "<template>",
        "</template>",
        "<script>",
        "</script>",
        "<span hidden>",
        "</span>",
        "<ul>",
        "<li>",
        "</ul>",
        "<select>",
        "<option>",
        "</select>",
        "<form>",
        "</form>",
        "<h1>",
        "</h1>",
        "<svg>",
        "</svg>",
        "<math>",
        "</math>",
        "<br>",
        "<img>",
        "<noscript>",
        "</noscript>",
        "<style>",
        "</style>",
        "<textarea>",
        "</textarea>",
        "<title>",
        "</title>",
        "<head>",
        "<body>",
        "</body>",
        "<html>",
        "</html>",
        "<frameset>",
        "<caption>",
        "<col>",
        "<tbody>",
        "<nobr>",
        "<font color=red>",
        "</font>",
        "<button>",
        "</button>",
        "<!-- c -->",
        "<!doctype html>",
        "<?pi x?>",
        "x",
        " ",
        "京ICP备12345678号",
        "&amp;",
        "&lt;",
        "<",
        ">",
        "</",
        "<p",
        "\u{0}",
        "</x>",
        "<html lang=zh>",
        "<body class=b>",
    ];

    proptest::proptest! {
        /// The arena holds the tree scraper's DOM held for the same markup (the sink does
        /// what scraper's did, for every placement the tree builder asks for).
        #[test]
        fn the_arena_is_the_tree_scraper_built(picks in proptest::collection::vec(0..PIECES.len(), 0..60)) {
            let html: String = picks.iter().map(|&i| PIECES[i]).collect();
            let theirs = {
                let dom = scraper::Html::parse_document(&html);
                let mut s = String::new();
                scraper_outline(dom.tree.root(), &mut s);
                s
            };
            proptest::prop_assert_eq!(tree(&html), theirs, "{}", html);
        }
    }

    #[test]
    fn attributes_are_read_as_given() {
        let dom = parse(r#"<div id=Foot class=" a  b " HIDDEN data-x="1">x</div>"#);
        let div = (0..dom.slots.len() as NodeId)
            .find_map(|id| match dom.node(id) {
                Node::Element(e) if e.name() == "div" => Some(e),
                _ => None,
            })
            .map(|e| {
                (
                    e.attr("id").map(str::to_string),
                    e.classes().map(str::to_string).collect::<Vec<_>>(),
                    e.attr("hidden").is_some(),
                    e.attr("data-x").map(str::to_string),
                )
            });
        assert_eq!(
            div,
            Some((
                Some("Foot".into()),
                vec!["a".into(), "b".into()],
                true,
                Some("1".into())
            ))
        );
    }
}
