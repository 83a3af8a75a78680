/*
 * tests/compat/orm/java/HibernateApp.java - the ORM scenario with Hibernate
 * (Debian libhibernate3-java 3.6, MariaDB Connector/J).
 *
 *     java HibernateApp plain|scoped HOST PORT USER PASSWORD DB BASE
 *
 * The classes are the same in both modes; the mapping (hbm.xml, built
 * below) differs. plain: <composite-id> (userid, id) and associations keyed
 * by (userid, note_id), so dirty-checking updates, refresh, delete and lazy
 * loads address the user; Hibernate generates no part of a composite id, so
 * the app assigns ids (-(BASE + n): README.md). scoped: a generated id alone, as
 * without sharding; the user is declared for every transaction right after
 * it begins (Session.doWork) with SW_ORM_SCOPE_TXN.
 */

import java.io.ByteArrayInputStream;
import java.io.Serializable;
import java.nio.charset.StandardCharsets;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.function.Function;

import org.hibernate.LockMode;
import org.hibernate.Query;
import org.hibernate.Session;
import org.hibernate.SessionFactory;
import org.hibernate.Transaction;
import org.hibernate.cfg.Configuration;

public class HibernateApp {
    static final String[] STEPS = {"create", "bulk_create", "get", "paginate", "count", "save",
        "refresh", "increment", "upsert", "get_or_create", "relation_create", "eager", "lazy",
        "delete_object", "delete_query", "tx_commit", "tx_rollback", "row_lock", "second_user"};

    public static class Note implements Serializable {
        private Long id;
        private Long userid;
        private String title;
        private String body;
        private int views;
        private Set<Comment> comments = new LinkedHashSet<>();

        public Note() { }
        Note(long userid, Long id) { this.userid = userid; this.id = id; }
        public Long getId() { return id; }
        public void setId(Long v) { id = v; }
        public Long getUserid() { return userid; }
        public void setUserid(Long v) { userid = v; }
        public String getTitle() { return title; }
        public void setTitle(String v) { title = v; }
        public String getBody() { return body; }
        public void setBody(String v) { body = v; }
        public int getViews() { return views; }
        public void setViews(int v) { views = v; }
        public Set<Comment> getComments() { return comments; }
        public void setComments(Set<Comment> v) { comments = v; }
        /* a <composite-id> entity is its own identifier: equal by (userid, id) */
        @Override public boolean equals(Object o) {
            return o instanceof Note && Objects.equals(id, ((Note) o).getId())
                && Objects.equals(userid, ((Note) o).getUserid());
        }
        @Override public int hashCode() { return Objects.hash(userid, id); }
    }

    public static class Comment implements Serializable {
        private Long id;
        private Long userid;
        private Long noteId;
        private Note note;
        private String text;

        public Comment() { }
        public Long getId() { return id; }
        public void setId(Long v) { id = v; }
        public Long getUserid() { return userid; }
        public void setUserid(Long v) { userid = v; }
        public Long getNoteId() { return noteId; }
        public void setNoteId(Long v) { noteId = v; }
        public Note getNote() { return note; }
        public void setNote(Note v) { note = v; }
        public String getText() { return text; }
        public void setText(String v) { text = v; }
        @Override public boolean equals(Object o) {
            return o instanceof Comment && Objects.equals(id, ((Comment) o).getId())
                && Objects.equals(userid, ((Comment) o).getUserid());
        }
        @Override public int hashCode() { return Objects.hash(userid, id); }
    }

    static final String N = "HibernateApp$Note", C = "HibernateApp$Comment";

    static String mapping(boolean scoped) {
        String head = "<?xml version=\"1.0\"?><!DOCTYPE hibernate-mapping PUBLIC"
            + " \"-//Hibernate/Hibernate Mapping DTD 3.0//EN\""
            + " \"http://www.hibernate.org/dtd/hibernate-mapping-3.0.dtd\"><hibernate-mapping>";
        String props = "<property name=\"title\"/><property name=\"body\"/><property name=\"views\"/>";
        if (scoped) {
            return head
                + "<class name=\"" + N + "\" table=\"orm_notes\">"
                + "<id name=\"id\"><generator class=\"identity\"/></id><property name=\"userid\"/>"
                + props
                + "<set name=\"comments\" inverse=\"true\" order-by=\"text\"><key column=\"note_id\"/>"
                + "<one-to-many class=\"" + C + "\"/></set></class>"
                + "<class name=\"" + C + "\" table=\"orm_comments\">"
                + "<id name=\"id\"><generator class=\"identity\"/></id><property name=\"userid\"/>"
                + "<many-to-one name=\"note\" class=\"" + N + "\" column=\"note_id\"/>"
                + "<property name=\"text\"/></class></hibernate-mapping>";
        }
        return head
            + "<class name=\"" + N + "\" table=\"orm_notes\">"
            + "<composite-id><key-property name=\"userid\"/><key-property name=\"id\"/></composite-id>"
            + props
            + "<set name=\"comments\" inverse=\"true\" order-by=\"text\">"
            + "<key><column name=\"userid\"/><column name=\"note_id\"/></key>"
            + "<one-to-many class=\"" + C + "\"/></set></class>"
            + "<class name=\"" + C + "\" table=\"orm_comments\">"
            + "<composite-id><key-property name=\"userid\"/><key-property name=\"id\"/></composite-id>"
            + "<property name=\"noteId\" column=\"note_id\"/>"
            + "<many-to-one name=\"note\" class=\"" + N + "\" insert=\"false\" update=\"false\">"
            + "<column name=\"userid\"/><column name=\"note_id\"/></many-to-one>"
            + "<property name=\"text\"/></class></hibernate-mapping>";
    }

    static class CheckFailed extends RuntimeException {
        CheckFailed(String m) { super(m); }
    }

    static void check(boolean cond, String what, Object got) {
        if (!cond) throw new CheckFailed("wrong result: " + what + (got == null ? "" : " (got " + got + ")"));
    }

    static String mysqlError(Throwable e) {
        for (Throwable x = e; x != null; x = x.getCause()) {
            if (x instanceof SQLException && ((SQLException) x).getErrorCode() >= 1000) {
                return ((SQLException) x).getErrorCode() + " " + x.getMessage().replaceAll("\\s+", " ");
            }
            if (x.getCause() == x) break;
        }
        return e.getClass().getSimpleName() + ": " + String.valueOf(e.getMessage()).split("\n")[0];
    }

    final boolean scoped;
    final long base;
    final SessionFactory sf;
    long user;
    long nIds;
    Long firstId;

    HibernateApp(boolean scoped, long base, SessionFactory sf) {
        this.scoped = scoped;
        this.base = base;
        this.sf = sf;
        this.user = base + 1;
    }

    /* One request: a Session and one transaction (scoped: the user declared
     * for it as its first statement). */
    <T> T tx(Function<Session, T> work) {
        Session s = sf.openSession();
        Transaction t = s.beginTransaction();
        try {
            if (scoped) {
                String scope = System.getenv("SW_ORM_SCOPE_TXN").replace("{userid}", Long.toString(user));
                s.doWork(conn -> {
                    try (Statement st = conn.createStatement()) {
                        st.execute(scope);
                    }
                });
            }
            T r = work.apply(s);
            t.commit();
            return r;
        } catch (RuntimeException e) {
            if (t.isActive()) t.rollback();
            throw e;
        } finally {
            s.close();
        }
    }

    void run(Function<Session, Object> work) { tx(work); }

    Long newId() { return scoped ? null : -(base + ++nIds); }

    Note newNote(String title, String body) {
        Note n = new Note(user, newId());
        n.setTitle(title);
        n.setBody(body);
        return n;
    }

    /* HQL with the user's condition added in plain mode */
    Query hql(Session s, String q) {
        if (!scoped) {
            String cond = q.contains(" where ") ? " and n.userid = :u" : " where n.userid = :u";
            int at = q.indexOf(" order by ");
            q = at < 0 ? q + cond : q.substring(0, at) + cond + q.substring(at);
        }
        Query query = s.createQuery(q);
        if (!scoped) query.setLong("u", user);
        return query;
    }

    Note first(Session s) {
        return (Note) hql(s, "from " + N + " n where n.title = 'first'").uniqueResult();
    }

    long countTitle(Session s, String like) {
        return (Long) hql(s, "select count(*) from " + N + " n where n.title like '" + like + "'").uniqueResult();
    }

    Object key(Long id) { return scoped ? id : new Note(user, id); }

    void step(String name) {
        switch (name) {
        case "create":
            run(s -> { Note n = newNote("first", "hello"); s.save(n); firstId = n.getId(); return null; });
            check(firstId != null, "id", firstId);
            break;
        case "bulk_create":
            run(s -> { for (int i = 1; i <= 3; i++) s.save(newNote("bulk-" + i, null)); return null; });
            run(s -> { check(countTitle(s, "bulk-%") == 3, "3 bulk rows", null); return null; });
            break;
        case "get":
            run(s -> { Note n = (Note) s.get(Note.class, (Serializable) key(firstId));
                check(n != null && "first".equals(n.getTitle()), "get by identity", n); return null; });
            break;
        case "paginate":
            run(s -> { List<String> got = new ArrayList<>();
                for (Object o : hql(s, "from " + N + " n order by n.title").setFirstResult(2).setMaxResults(2).list())
                    got.add(((Note) o).getTitle());
                check(got.equals(List.of("bulk-3", "first")), "page 2", got); return null; });
            break;
        case "count":
            run(s -> { Object c = hql(s, "select count(*) from " + N + " n").uniqueResult();
                check(((Long) c) == 4, "4 notes", c); return null; });
            break;
        case "save":
            run(s -> { first(s).setBody("edited"); return null; });
            run(s -> { check("edited".equals(first(s).getBody()), "saved body", null); return null; });
            break;
        case "refresh":
            run(s -> { Note n = first(s);
                hql(s, "update " + N + " n set n.body = 'changed' where n.title = 'first'").executeUpdate();
                s.refresh(n);
                check("changed".equals(n.getBody()), "refreshed body", n.getBody()); return null; });
            break;
        case "increment":
            run(s -> hql(s, "update " + N + " n set n.views = n.views + 1 where n.title = 'first'").executeUpdate());
            run(s -> { check(first(s).getViews() == 1, "views 1", null); return null; });
            break;
        case "upsert":
            run(s -> s.createSQLQuery("INSERT INTO orm_notes (userid, id, title, body) VALUES (?, ?, ?, ?)"
                    + " ON DUPLICATE KEY UPDATE body = VALUES(body)")
                .setLong(0, user).setParameter(1, newId(), org.hibernate.Hibernate.LONG)
                .setString(2, "first").setString(3, "upserted").executeUpdate());
            run(s -> { Note n = first(s);
                check("upserted".equals(n.getBody()) && n.getViews() == 1, "upserted body, views kept",
                      n.getBody() + "/" + n.getViews()); return null; });
            break;
        case "get_or_create": {
            List<Long> ids = new ArrayList<>();
            for (boolean want : new boolean[] {true, false}) {
                run(s -> { Note n = (Note) hql(s, "from " + N + " n where n.title = 'goc'").uniqueResult();
                    boolean created = n == null;
                    if (created) { n = newNote("goc", null); s.save(n); }
                    check(created == want, "created " + want, null);
                    ids.add(n.getId()); return null; });
            }
            check(ids.get(0).equals(ids.get(1)), "the same row", ids);
            break;
        }
        case "relation_create":
            run(s -> { Note n = first(s);
                for (String t : new String[] {"c1", "c2"}) {
                    Comment c = new Comment();
                    c.setId(newId()); c.setUserid(user); c.setNoteId(n.getId()); c.setNote(n); c.setText(t);
                    n.getComments().add(c);
                    s.save(c);
                }
                return null; });
            break;
        case "eager": {
            List<?> notes = tx(s -> hql(s, "select distinct n from " + N + " n left join fetch n.comments c"
                + " order by n.title").list());
            List<String> got = new ArrayList<>();    /* the session is closed: only fetched data */
            for (Object o : notes)
                if ("first".equals(((Note) o).getTitle()))
                    for (Comment c : ((Note) o).getComments()) got.add(c.getText());
            got.sort(null);
            check(got.equals(List.of("c1", "c2")), "eager comments", got);
            break;
        }
        case "lazy":
            run(s -> { List<String> got = new ArrayList<>();
                for (Comment c : first(s).getComments()) got.add(c.getText());
                check(got.equals(List.of("c1", "c2")), "lazy comments", got); return null; });
            run(s -> { Comment c = (Comment) s.createQuery("from " + C + " c where c.text = 'c1'"
                    + (scoped ? "" : " and c.userid = " + user)).uniqueResult();
                check("first".equals(c.getNote().getTitle()), "lazy note of a comment", null); return null; });
            break;
        case "delete_object":
            run(s -> { s.delete(hql(s, "from " + N + " n where n.title = 'bulk-3'").uniqueResult()); return null; });
            run(s -> { check(countTitle(s, "bulk-3") == 0, "gone", null); return null; });
            break;
        case "delete_query": {
            int n = tx(s -> hql(s, "delete from " + N + " n where n.title like 'bulk-%'").executeUpdate());
            check(n >= 2, "bulk-1 and bulk-2 deleted", n);
            run(s -> { check(countTitle(s, "bulk-%") == 0, "no bulk-* left", null); return null; });
            break;
        }
        case "tx_commit":
            run(s -> { s.save(newNote("tx-a", null)); Note f = first(s); f.setViews(f.getViews() + 1); return null; });
            run(s -> { check(countTitle(s, "tx-a") == 1 && first(s).getViews() == 2, "tx-a, views 2", null); return null; });
            break;
        case "tx_rollback": {
            Session s = sf.openSession();
            Transaction t = s.beginTransaction();
            try {
                if (scoped) {
                    String scope = System.getenv("SW_ORM_SCOPE_TXN").replace("{userid}", Long.toString(user));
                    s.doWork(conn -> { try (Statement st = conn.createStatement()) { st.execute(scope); } });
                }
                s.save(newNote("tx-b", null));
                s.flush();
                check(countTitle(s, "tx-b") == 1, "tx-b inside", null);
            } finally {
                t.rollback();
                s.close();
            }
            run(x -> { check(countTitle(x, "tx-b") == 0, "tx-b gone", null); return null; });
            break;
        }
        case "row_lock":
            run(s -> { Note n = (Note) hql(s, "from " + N + " n where n.title = 'first'")
                    .setLockMode("n", LockMode.PESSIMISTIC_WRITE).uniqueResult();
                n.setViews(n.getViews() + 1); return null; });
            run(s -> { check(first(s).getViews() == 3, "views 3", null); return null; });
            break;
        case "second_user":
            user = base + 2;
            try {
                run(s -> { s.save(newNote("other", null)); return null; });
                run(s -> { check(((Long) hql(s, "select count(*) from " + N + " n").uniqueResult()) == 1,
                    "1 note of user 2", null); return null; });
            } finally {
                user = base + 1;
            }
            break;
        default:
            throw new IllegalArgumentException(name);
        }
    }

    public static void main(String[] args) {
        if (args.length != 7 || !(args[0].equals("plain") || args[0].equals("scoped"))) {
            System.err.println("usage: HibernateApp plain|scoped HOST PORT USER PASSWORD DB BASE");
            System.exit(2);
        }
        boolean scoped = args[0].equals("scoped");
        Configuration cfg = new Configuration()
            .setProperty("hibernate.connection.driver_class", "org.mariadb.jdbc.Driver")
            .setProperty("hibernate.connection.url", "jdbc:mariadb://" + args[1] + ":" + args[2] + "/" + args[5])
            .setProperty("hibernate.connection.username", args[3])
            .setProperty("hibernate.connection.password", args[4])
            .setProperty("hibernate.connection.pool_size", "2")
            .setProperty("hibernate.dialect", "org.hibernate.dialect.MySQL5InnoDBDialect")
            .setProperty("hibernate.jdbc.batch_size", "20")
            .setProperty("hibernate.temp.use_jdbc_metadata_defaults", "false");
        cfg.addInputStream(new ByteArrayInputStream(mapping(scoped).getBytes(StandardCharsets.UTF_8)));
        SessionFactory sf = cfg.buildSessionFactory();
        HibernateApp app = new HibernateApp(scoped, Long.parseLong(args[6]), sf);
        int failed = 0;
        for (String step : STEPS) {
            try {
                app.step(step);
                System.out.println("ok " + step);
            } catch (RuntimeException e) {
                failed++;
                String msg = e instanceof CheckFailed ? e.getMessage() : mysqlError(e);
                System.out.println("FAIL " + step + ": " + msg);
                if (!(e instanceof CheckFailed) && !msg.startsWith("1235 ")) e.printStackTrace();
            }
            System.out.flush();
        }
        System.out.println("DONE " + (STEPS.length - failed) + " ok, " + failed + " failed");
        sf.close();
    }
}
