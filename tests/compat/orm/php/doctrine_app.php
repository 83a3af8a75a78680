<?php
/*
 * tests/compat/orm/php/doctrine_app.php - the ORM scenario with Doctrine ORM
 * (Debian php-doctrine-orm 2.14, php-doctrine-dbal 3.6, pdo_mysql).
 *
 *     php doctrine_app.php plain|scoped HOST PORT USER PASSWORD DB BASE
 *
 * plain: Note's identity is (userid, id); Comment's is derived from its note
 * (note_id, userid) plus id, so flushes, refresh, remove and lazy loads
 * address the user. Doctrine generates no part of a composite identity: the
 * app assigns ids (-(BASE + n): README.md). scoped: a generated id alone, as
 * without sharding; the user is declared at the start of every request on
 * the EntityManager's connection with SW_ORM_SCOPE.
 */

use Doctrine\Common\Collections\ArrayCollection;
use Doctrine\DBAL\DriverManager;
use Doctrine\DBAL\LockMode;
use Doctrine\ORM\EntityManager;
use Doctrine\ORM\Mapping as ORM;
use Doctrine\ORM\ORMSetup;

require_once '/usr/share/php/Doctrine/ORM/autoload.php';
require_once '/usr/share/php/Doctrine/DBAL/autoload.php';
require_once '/usr/share/php/Symfony/Component/Cache/autoload.php';

const STEPS = ['create', 'bulk_create', 'get', 'paginate', 'count', 'save', 'refresh', 'increment',
    'upsert', 'get_or_create', 'relation_create', 'eager', 'lazy', 'delete_object', 'delete_query',
    'tx_commit', 'tx_rollback', 'row_lock', 'second_user'];

if ($argc != 8 || !in_array($argv[1], ['plain', 'scoped'], true)) {
    fwrite(STDERR, "usage: $argv[0] plain|scoped HOST PORT USER PASSWORD DB BASE\n");
    exit(2);
}
[, $MODE, $HOST, $PORT, $USER, $PASSWORD, $DB, $BASE] = $argv;
define('SCOPED', $MODE === 'scoped');
$BASE = (int)$BASE;

if (SCOPED) {
    #[ORM\Entity, ORM\Table(name: 'orm_notes')]
    class Note
    {
        #[ORM\Id, ORM\GeneratedValue, ORM\Column(type: 'integer')]
        public ?int $id = null;
        #[ORM\Column(type: 'integer')]
        public int $userid;
        #[ORM\Column(type: 'string', length: 100)]
        public string $title;
        #[ORM\Column(type: 'string', length: 500, nullable: true)]
        public ?string $body = null;
        #[ORM\Column(type: 'integer')]
        public int $views = 0;
        #[ORM\OneToMany(targetEntity: Comment::class, mappedBy: 'note')]
        #[ORM\OrderBy(['text' => 'ASC'])]
        public $comments;

        public function __construct(int $userid, string $title, ?string $body = null, ?int $id = null)
        {
            [$this->userid, $this->title, $this->body] = [$userid, $title, $body];
            $this->comments = new ArrayCollection();
        }
    }

    #[ORM\Entity, ORM\Table(name: 'orm_comments')]
    class Comment
    {
        #[ORM\Id, ORM\GeneratedValue, ORM\Column(type: 'integer')]
        public ?int $id = null;
        #[ORM\Column(type: 'integer')]
        public int $userid;
        #[ORM\ManyToOne(targetEntity: Note::class, inversedBy: 'comments')]
        #[ORM\JoinColumn(name: 'note_id', referencedColumnName: 'id')]
        public Note $note;
        #[ORM\Column(type: 'string', length: 200)]
        public string $text;

        public function __construct(Note $note, string $text, ?int $id = null)
        {
            [$this->note, $this->userid, $this->text] = [$note, $note->userid, $text];
        }
    }
} else {
    #[ORM\Entity, ORM\Table(name: 'orm_notes')]
    class Note
    {
        #[ORM\Id, ORM\Column(type: 'integer')]
        public int $userid;
        #[ORM\Id, ORM\Column(type: 'integer')]
        public int $id;
        #[ORM\Column(type: 'string', length: 100)]
        public string $title;
        #[ORM\Column(type: 'string', length: 500, nullable: true)]
        public ?string $body = null;
        #[ORM\Column(type: 'integer')]
        public int $views = 0;
        #[ORM\OneToMany(targetEntity: Comment::class, mappedBy: 'note')]
        #[ORM\OrderBy(['text' => 'ASC'])]
        public $comments;

        public function __construct(int $userid, string $title, ?string $body = null, ?int $id = null)
        {
            [$this->userid, $this->title, $this->body, $this->id] = [$userid, $title, $body, $id];
            $this->comments = new ArrayCollection();
        }
    }

    #[ORM\Entity, ORM\Table(name: 'orm_comments')]
    class Comment
    {
        /* the note's (userid, id) as userid and note_id: userid is also part
           of the comment's identity */
        #[ORM\Id, ORM\Column(type: 'integer')]
        public int $userid;
        #[ORM\Id, ORM\Column(type: 'integer')]
        public int $id;
        #[ORM\ManyToOne(targetEntity: Note::class, inversedBy: 'comments')]
        #[ORM\JoinColumn(name: 'userid', referencedColumnName: 'userid')]
        #[ORM\JoinColumn(name: 'note_id', referencedColumnName: 'id')]
        public Note $note;
        #[ORM\Column(type: 'string', length: 200)]
        public string $text;

        public function __construct(Note $note, string $text, ?int $id = null)
        {
            [$this->note, $this->userid, $this->text, $this->id] = [$note, $note->userid, $text, $id];
        }
    }
}

class CheckFailed extends Exception
{
}

function check($cond, string $what, $got = null): void
{
    if (!$cond) {
        throw new CheckFailed("wrong result: $what" . ($got === null ? '' : ' (got ' . json_encode($got) . ')'));
    }
}

function mysql_error(Throwable $e): string
{
    for ($x = $e; $x; $x = $x->getPrevious()) {
        if (preg_match('/SQLSTATE\[\w+\]: [^:]*: (\d{4}) (.*)/s', $x->getMessage(), $m)) {
            return $m[1] . ' ' . preg_replace('/\s+/', ' ', $m[2]);
        }
    }
    return get_class($e) . ': ' . strtok($e->getMessage(), "\n");
}

class App
{
    public int $user;
    private $firstId;
    private int $nIds = 0;

    public function __construct(public EntityManager $em, private int $base, int $user)
    {
        $this->user = $user;
    }

    /* A request: a clean unit of work (and, scoped, the user declared). */
    public function begin_request(): void
    {
        $this->em->clear();
        if (SCOPED) {
            $this->em->getConnection()->executeStatement(
                str_replace('{userid}', (string)$this->user, getenv('SW_ORM_SCOPE')));
        }
    }

    /* plain: the app-assigned id, -(BASE + n) */
    private function newId(): ?int
    {
        return SCOPED ? null : -($this->base + ++$this->nIds);
    }

    private function mine(array $crit = []): array
    {
        return SCOPED ? $crit : $crit + ['userid' => $this->user];
    }

    private function notes()
    {
        return $this->em->getRepository(Note::class);
    }

    private function first(): Note
    {
        $n = $this->notes()->findOneBy($this->mine(['title' => 'first']));
        check($n !== null, 'note first exists');
        return $n;
    }

    /* DQL's user condition: " AND n.userid = :u" in plain mode */
    private function dql(string $q)
    {
        $where = SCOPED ? '' : (str_contains($q, 'WHERE') ? ' AND n.userid = :u' : ' WHERE n.userid = :u');
        $q = preg_replace('/(ORDER BY|$)/', $where . ' $1', $q, 1);
        $query = $this->em->createQuery($q);
        if (!SCOPED) {
            $query->setParameter('u', $this->user);
        }
        return $query;
    }

    private function countTitle(string $like): int
    {
        return (int)$this->dql("SELECT COUNT(n.id) FROM Note n WHERE n.title LIKE '$like'")->getSingleScalarResult();
    }

    public function create(): void
    {
        $n = new Note($this->user, 'first', 'hello', $this->newId());
        $this->em->persist($n);
        $this->em->flush();
        check($n->id !== null, 'id', $n->id);
        $this->firstId = $n->id;
    }

    public function bulk_create(): void
    {
        foreach ([1, 2, 3] as $i) {
            $this->em->persist(new Note($this->user, "bulk-$i", null, $this->newId()));
        }
        $this->em->flush();
        check($this->countTitle('bulk-%') === 3, '3 bulk rows');
    }

    public function get(): void
    {
        $key = SCOPED ? $this->firstId : ['userid' => $this->user, 'id' => $this->firstId];
        $n = $this->em->find(Note::class, $key);
        check($n && $n->title === 'first', 'find by identity');
    }

    public function paginate(): void
    {
        $got = array_map(fn($n) => $n->title, $this->notes()->findBy($this->mine(), ['title' => 'ASC'], 2, 2));
        check($got === ['bulk-3', 'first'], 'page 2', $got);
    }

    public function count(): void
    {
        check($this->notes()->count($this->mine()) === 4, '4 notes');
    }

    public function save(): void
    {
        $this->first()->body = 'edited';
        $this->em->flush();
        $this->em->clear();
        check($this->first()->body === 'edited', 'saved body');
    }

    public function refresh(): void
    {
        $n = $this->first();
        $this->dql("UPDATE Note n SET n.body = 'changed' WHERE n.title = 'first'")->execute();
        $this->em->refresh($n);
        check($n->body === 'changed', 'refreshed body', $n->body);
    }

    public function increment(): void
    {
        $this->dql("UPDATE Note n SET n.views = n.views + 1 WHERE n.title = 'first'")->execute();
        $this->em->clear();
        check($this->first()->views === 1, 'views 1');
    }

    public function upsert(): void
    {
        /* the ORM has none: DBAL, as Doctrine's documentation suggests */
        $this->em->getConnection()->executeStatement(
            'INSERT INTO orm_notes (userid, id, title, body) VALUES (?, ?, ?, ?)'
            . ' ON DUPLICATE KEY UPDATE body = VALUES(body)',
            [$this->user, $this->newId(), 'first', 'upserted']);
        $n = $this->first();
        $this->em->refresh($n);
        check([$n->body, $n->views] === ['upserted', 1], 'upserted body, views kept', [$n->body, $n->views]);
    }

    public function get_or_create(): void
    {
        $ids = [];
        foreach ([true, false] as $want) {
            $this->em->clear();
            $n = $this->notes()->findOneBy($this->mine(['title' => 'goc']));
            $created = $n === null;
            if ($created) {
                $n = new Note($this->user, 'goc', null, $this->newId());
                $this->em->persist($n);
                $this->em->flush();
            }
            check($created === $want, "created $want");
            $ids[] = $n->id;
        }
        check($ids[0] === $ids[1], 'the same row', $ids);
    }

    public function relation_create(): void
    {
        $n = $this->first();
        foreach (['c1', 'c2'] as $t) {
            $c = new Comment($n, $t, $this->newId());
            $n->comments->add($c);
            $this->em->persist($c);
        }
        $this->em->flush();
    }

    public function eager(): void
    {
        $notes = $this->dql('SELECT n, c FROM Note n LEFT JOIN n.comments c ORDER BY n.title, c.text')->getResult();
        $first = array_values(array_filter($notes, fn($n) => $n->title === 'first'));
        check($first && $first[0]->comments->isInitialized(), 'comments loaded with the notes');
        $got = array_map(fn($c) => $c->text, $first[0]->comments->toArray());
        check($got === ['c1', 'c2'], 'eager comments', $got);
    }

    public function lazy(): void
    {
        $n = $this->first();
        $got = array_map(fn($c) => $c->text, $n->comments->toArray());
        check($got === ['c1', 'c2'], 'lazy comments', $got);
        $this->em->clear();
        $c = $this->dql("SELECT c FROM Comment c JOIN c.note n WHERE c.text = 'c1'")->getSingleResult();
        check($c->note->title === 'first', 'lazy note of a comment');
    }

    public function delete_object(): void
    {
        $this->em->remove($this->notes()->findOneBy($this->mine(['title' => 'bulk-3'])));
        $this->em->flush();
        check($this->countTitle('bulk-3') === 0, 'gone');
    }

    public function delete_query(): void
    {
        $n = $this->dql("DELETE FROM Note n WHERE n.title LIKE 'bulk-%'")->execute();
        check($n >= 2, 'bulk-1 and bulk-2 deleted', $n);
        check($this->countTitle('bulk-%') === 0, 'no bulk-* left');
    }

    public function tx_commit(): void
    {
        $this->em->wrapInTransaction(function (EntityManager $em) {
            $em->persist(new Note($this->user, 'tx-a', null, $this->newId()));
            $this->first()->views += 1;
        });
        $this->em->clear();
        check($this->countTitle('tx-a') === 1, 'tx-a');
        check($this->first()->views === 2, 'views 2');
    }

    public function tx_rollback(): void
    {
        $this->em->beginTransaction();
        try {
            $this->em->persist(new Note($this->user, 'tx-b', null, $this->newId()));
            $this->em->flush();
            check($this->countTitle('tx-b') === 1, 'tx-b inside');
        } finally {
            $this->em->rollback();
            $this->em->clear();
        }
        check($this->countTitle('tx-b') === 0, 'tx-b gone');
    }

    public function row_lock(): void
    {
        $this->em->wrapInTransaction(function (EntityManager $em) {
            $n = $this->dql("SELECT n FROM Note n WHERE n.title = 'first'")
                ->setLockMode(LockMode::PESSIMISTIC_WRITE)->getSingleResult();
            $n->views += 1;
        });
        $this->em->clear();
        check($this->first()->views === 3, 'views 3');
    }

    public function second_user(): void
    {
        $u1 = $this->user;
        $this->user = $this->base + 2;
        try {
            $this->begin_request();
            $this->em->persist(new Note($this->user, 'other', null, $this->newId()));
            $this->em->flush();
            check($this->notes()->count($this->mine()) === 1, '1 note of user 2');
        } finally {
            $this->user = $u1;
        }
    }
}

$config = ORMSetup::createAttributeMetadataConfiguration([__DIR__], true, sys_get_temp_dir() . '/sw-orm-doctrine-proxies-' . getmypid());
$conn = DriverManager::getConnection(['driver' => 'pdo_mysql', 'host' => $HOST, 'port' => (int)$PORT,
    'user' => $USER, 'password' => $PASSWORD, 'dbname' => $DB, 'charset' => 'utf8mb4'], $config);
$em = new EntityManager($conn, $config);
$app = new App($em, $BASE, $BASE + 1);
$failed = 0;
foreach (STEPS as $step) {
    try {
        $app->begin_request();
        $app->$step();
        echo "ok $step\n";
    } catch (Throwable $e) {
        $failed++;
        $msg = $e instanceof CheckFailed ? $e->getMessage() : mysql_error($e);
        echo "FAIL $step: $msg\n";
        if (!($e instanceof CheckFailed) && !str_starts_with($msg, '1235 ')) {
            fwrite(STDERR, (string)$e . "\n");
        }
        if (!$em->isOpen()) {      /* a failed flush closes it: the next request gets a new one */
            $em = new EntityManager($conn, $config);
            $app->em = $em;
        }
        while ($conn->isTransactionActive()) {
            $conn->rollBack();
        }
    }
}
echo 'DONE ' . (count(STEPS) - $failed) . " ok, $failed failed\n";
