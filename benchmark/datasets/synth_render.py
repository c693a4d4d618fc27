"""Rendering for VP-Synth: articulated people, actions as joint trajectories, scenes.

Private helper of ``benchmark.datasets.vp_synth``. A person is a 2D skeleton of 15 joints
(head, neck, shoulders, elbows, wrists, pelvis, hips, knees, ankles) plus hand and toe end
points, drawn as thick limbs, a torso polygon, a head and hands and feet with OpenCV. An
action is a set of joint-angle trajectories with a random phase, amplitude and tempo, so
motion, not one pose, tells the classes apart. Private attributes are appearance only
(colours, hair, face features), independent of the motion. Everything is drawn at once into
RGB, a nearness map (255 = nearest) and the person mask, so the three line up by
construction.

Nudity has a coarse cue and a fine one, as in real video, where some people show an
attribute by colour or shape that survives blur and downsampling and others only by detail at
the camera's resolution limit: half the people who keep a shirt on wear one in their own skin
tone, told from a bare torso only by the cloth's weave, a checkerboard at the pixel pitch of
the stored frames (``apply_weave``) whose mean is the skin tone. Downsampling by 2 and any blur
remove it, so on VP-Synth, as on the real datasets, hiding detail hides some attributes too.

The gender attribute is a *synthetic proxy*: long hair with narrower shoulders and wider
hips (positive) versus short hair with broader shoulders (negative). It stands in for the
real datasets' "gender visible" label and says nothing about real people.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

ACTIONS = ('wave', 'clap', 'jump', 'squat', 'walk', 'run', 'kick', 'punch', 'bend',
           'jumping_jack')
RENDER_SIZE = 112

# Base period of each action in frames (a clip's tempo scales it by 0.8 to 1.25).
_PERIODS = dict(wave=10, clap=8, jump=14, squat=18, walk=14, run=9, kick=14, punch=10, bend=20,
                jumping_jack=12)

_SHIFT = 4  # OpenCV fixed-point bits: sub-pixel positions keep slow motions smooth
_ONE = 1 << _SHIFT

# Joint order of the skeleton; R_* is the near side, drawn in front of the torso.
(HEAD, NECK, R_SHO, R_ELB, R_WRI, L_SHO, L_ELB, L_WRI, PELVIS, R_HIP, R_KNE, R_ANK, L_HIP, L_KNE,
 L_ANK, R_HAND, L_HAND, R_TOE, L_TOE) = range(19)
NUM_JOINTS = 15

# Colours (RGB). Skin tones span light to dark; covering materials are greyish or bluish so
# they never read as skin; shirts avoid skin hues so a shirt never passes for a bare torso.
SKIN_TONES = np.array([(250, 220, 192), (236, 190, 150), (214, 160, 105), (180, 118, 70),
                       (130, 80, 45), (88, 54, 32)], np.float32)
COVER_COLOURS = np.array([(40, 40, 46), (74, 76, 84), (32, 40, 78), (46, 72, 64), (104, 104, 120),
                          (150, 152, 165)], np.float32)
_SHIRTS = {'a': [(205, 40, 40), (40, 160, 60), (40, 80, 205), (230, 205, 40), (130, 50, 165),
                 (30, 150, 150), (235, 235, 235)],
           'b': [(240, 140, 190), (160, 220, 90), (110, 185, 240), (180, 160, 235),
                 (120, 20, 40), (20, 90, 40), (250, 250, 120)]}
_PANTS = {'a': [(50, 70, 120), (30, 30, 32), (170, 150, 110), (110, 110, 112)],
          'b': [(90, 40, 40), (60, 90, 60), (200, 200, 205), (70, 60, 110)]}
_HAIR = [(25, 20, 20), (70, 45, 30), (125, 80, 45), (215, 185, 110), (165, 70, 30),
         (175, 175, 175)]
_HELMETS = [(235, 235, 235), (200, 30, 30), (25, 25, 28), (245, 200, 30), (30, 90, 210)]
_SHOES = [(20, 20, 20), (240, 240, 240), (90, 50, 30)]


@dataclass
class DomainStyle:
    """What differs between the two domains: scenes, camera and people."""

    scale: tuple[float, float]        # person height / frame side
    ground: tuple[float, float]       # feet row / frame side
    horizon: tuple[float, float]      # wall-floor (or sky-ground) row / frame side
    noise: tuple[float, float]        # sensor noise std in grey levels
    jitter: float                     # camera shake in pixels
    pan: float                        # camera pan over a clip in pixels
    limb: float                       # limb thickness / person height
    head: float                       # head radius / person height
    outdoor: bool
    build: tuple[float, float, float] = (1.0, 1.0, 1.0)  # torso, arm, leg length factors


DOMAINS = {
    'a': DomainStyle(scale=(0.55, 0.70), ground=(0.88, 0.95), horizon=(0.38, 0.55),
                     noise=(1.5, 4.0), jitter=0.6, pan=3.0, limb=0.060, head=0.085, outdoor=False),
    'b': DomainStyle(scale=(0.46, 0.60), ground=(0.82, 0.93), horizon=(0.25, 0.42),
                     noise=(3.0, 7.0), jitter=1.2, pan=6.0, limb=0.050, head=0.095, outdoor=True,
                     build=(0.88, 1.10, 1.12)),
}


# ---------------------------------------------------------------------------- motion


def _pose(action: str, ph: np.ndarray, amp: float) -> dict[str, np.ndarray]:
    """Absolute segment angles (radians from straight down, + towards +x) over time.

    Keys: upper arm ``ua`` and forearm ``fa``, thigh ``th`` and shin ``sh`` per side
    (``_r`` near, ``_l`` far), torso ``lean`` (+ forward), airborne ``lift`` and forward
    travel ``travel`` in body heights.
    """
    s, c = np.sin(ph), np.cos(ph)
    z = np.zeros_like(ph)
    p = dict(ua_r=z + 0.12, fa_r=z + 0.25, ua_l=z - 0.12, fa_l=z - 0.25, th_r=z + 0.04,
             sh_r=z + 0.02, th_l=z - 0.04, sh_l=z - 0.02, lean=z, lift=z, travel=z)
    if action == 'wave':
        p['ua_r'] = z + 2.5 + 0.1 * amp * s
        p['fa_r'] = 2.75 + 0.75 * amp * s
    elif action == 'clap':
        opened = 0.5 + 0.5 * s * min(amp, 1.0)
        p['ua_r'], p['ua_l'] = 0.35 + 0.55 * opened, -(0.35 + 0.55 * opened)
        p['fa_r'], p['fa_l'] = 3.75 - 1.2 * opened, -(3.75 - 1.2 * opened)
    elif action == 'jump':
        air = np.maximum(s, 0.0)
        crouch = np.maximum(-s, 0.0) * 0.8
        p['lift'] = 0.2 * amp * air
        p['th_r'], p['th_l'] = 0.9 * crouch, 0.9 * crouch - 0.05
        p['sh_r'], p['sh_l'] = -0.7 * crouch, -0.7 * crouch - 0.05
        p['ua_r'] = p['ua_l'] = -0.6 * crouch + 2.6 * air
        p['fa_r'] = p['fa_l'] = p['ua_r'] + 0.2
        p['lean'] = 0.45 * crouch
    elif action == 'squat':
        depth = amp * (0.5 - 0.5 * c)
        p['th_r'], p['th_l'] = 1.4 * depth, 1.4 * depth - 0.06
        p['sh_r'], p['sh_l'] = -0.55 * depth, -0.55 * depth - 0.06
        p['ua_r'] = p['ua_l'] = 0.1 + 1.45 * depth
        p['fa_r'] = p['fa_l'] = 0.1 + 1.5 * depth
        p['lean'] = 0.5 * depth
    elif action in ('walk', 'run'):
        run = action == 'run'
        swing = amp * (0.75 if run else 0.45)
        knee = amp * (1.4 if run else 0.6)
        p['th_r'], p['th_l'] = swing * s, -swing * s
        p['sh_r'] = p['th_r'] - knee * np.maximum(np.sin(ph - 0.9), 0.0)
        p['sh_l'] = p['th_l'] - knee * np.maximum(np.sin(ph - 0.9 + np.pi), 0.0)
        arm = amp * (0.8 if run else 0.4)
        bent = 1.6 if run else 0.25
        p['ua_r'], p['ua_l'] = -arm * s, arm * s
        p['fa_r'], p['fa_l'] = p['ua_r'] + bent, p['ua_l'] + bent
        p['lean'] = z + (0.3 if run else 0.04)
        p['lift'] = (0.07 if run else 0.012) * np.abs(c)
        p['travel'] = (0.15 if run else 0.1) * ph / (2 * np.pi)
    elif action == 'kick':
        k = np.maximum(s, 0.0) ** 2
        p['th_r'] = -0.25 + 1.75 * amp * k
        p['sh_r'] = p['th_r'] - 1.2 * (1.0 - k) * (np.maximum(s, 0.0) < 0.6)
        p['th_l'], p['sh_l'] = z - 0.08, z - 0.16
        p['ua_r'], p['ua_l'] = 0.3 - 0.8 * k, -0.3 + 1.0 * k
        p['fa_r'], p['fa_l'] = p['ua_r'] + 0.4, p['ua_l'] + 0.4
        p['lean'] = -0.25 * k
    elif action == 'punch':
        ext_r, ext_l = np.maximum(s, 0.0) * amp, np.maximum(-s, 0.0) * amp
        ext_r, ext_l = np.minimum(ext_r, 1.0), np.minimum(ext_l, 1.0)
        p['ua_r'], p['ua_l'] = 0.45 + 1.1 * ext_r, 0.45 + 1.1 * ext_l
        p['fa_r'], p['fa_l'] = 2.7 - 1.15 * ext_r, 2.7 - 1.15 * ext_l
        p['th_r'], p['th_l'] = z + 0.3, z - 0.25
        p['sh_r'], p['sh_l'] = z + 0.1, z - 0.3
        p['lean'] = 0.12 + 0.1 * (ext_r + ext_l)
    elif action == 'bend':
        bow = amp * 1.25 * (0.5 - 0.5 * c)
        p['lean'] = bow
        p['ua_r'] = p['ua_l'] = 0.15 + 0.95 * bow
        p['fa_r'] = p['fa_l'] = 0.2 + 1.0 * bow
        p['th_r'], p['th_l'] = -0.25 * bow, -0.25 * bow - 0.04
        p['sh_r'], p['sh_l'] = p['th_r'], p['th_l']
    elif action == 'jumping_jack':
        o = 0.5 - 0.5 * c
        up = 0.2 + 2.55 * o * min(amp, 1.05)
        p['ua_r'], p['ua_l'] = up, -up
        p['fa_r'], p['fa_l'] = up + 0.25 * o, -up - 0.25 * o
        p['th_r'], p['th_l'] = 0.05 + 0.38 * o, -0.05 - 0.38 * o
        p['sh_r'], p['sh_l'] = p['th_r'] - 0.05, p['th_l'] + 0.05
        p['lift'] = 0.05 * np.abs(s)
    elif action == 'idle':
        p['ua_r'] = p['ua_r'] + 0.08 * s
        p['ua_l'] = p['ua_l'] + 0.08 * s
        p['lean'] = z + 0.03 * c
    else:
        raise KeyError(action)
    return p


def _dir(theta: np.ndarray) -> np.ndarray:
    """Unit vector (x right, y up) of a segment at ``theta`` from straight down."""
    return np.stack([np.sin(theta), -np.cos(theta)], -1)


def skeleton(action: str, num_frames: int, period: float, phase: float, amp: float,
             shoulder: float, hip: float, angle_noise: np.ndarray,
             build: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> np.ndarray:
    """Joint positions ``(T, 19, 2)`` in body heights, x forward, y up, feet on y = 0;
    ``build`` scales the torso, arm and leg segments (the domain's body proportions)."""
    torso, arm, leg = build
    t = np.arange(num_frames, dtype=np.float64)
    ph = 2 * np.pi * t / period + phase
    p = _pose(action, ph, amp)
    for i, key in enumerate(('ua_r', 'fa_r', 'ua_l', 'fa_l', 'th_r', 'sh_r', 'th_l', 'sh_l')):
        p[key] = p[key] + angle_noise[i]
    j = np.zeros((num_frames, 19, 2))
    lean = p['lean']
    up = np.stack([np.sin(lean), np.cos(lean)], -1)
    side = np.stack([np.cos(lean), -np.sin(lean)], -1)
    j[:, PELVIS] = 0.0
    j[:, NECK] = 0.30 * torso * up
    j[:, HEAD] = j[:, NECK] + 0.10 * up
    # A side view narrows the shoulders; the figure stays readable from the front.
    j[:, R_SHO] = j[:, NECK] - 0.02 * up + shoulder * side
    j[:, L_SHO] = j[:, NECK] - 0.02 * up - shoulder * side
    j[:, R_HIP] = hip * side
    j[:, L_HIP] = -hip * side
    for sho, elb, wri, hand, ua, fa in ((R_SHO, R_ELB, R_WRI, R_HAND, 'ua_r', 'fa_r'),
                                        (L_SHO, L_ELB, L_WRI, L_HAND, 'ua_l', 'fa_l')):
        j[:, elb] = j[:, sho] + 0.16 * arm * _dir(p[ua])
        j[:, wri] = j[:, elb] + 0.15 * arm * _dir(p[fa])
        j[:, hand] = j[:, wri] + 0.035 * arm * _dir(p[fa])
    for hp, kn, an, toe, th, sh in ((R_HIP, R_KNE, R_ANK, R_TOE, 'th_r', 'sh_r'),
                                    (L_HIP, L_KNE, L_ANK, L_TOE, 'th_l', 'sh_l')):
        j[:, kn] = j[:, hp] + 0.235 * leg * _dir(p[th])
        j[:, an] = j[:, kn] + 0.225 * leg * _dir(p[sh])
        j[:, toe] = j[:, an] + 0.075 * _dir(p[sh] + 1.35)
    # Stand on the ground: the lowest ankle touches y = foot height, plus the airborne lift.
    low = np.minimum(j[:, R_ANK, 1], j[:, L_ANK, 1])
    j[..., 1] += (0.03 - low + p['lift'])[:, None]
    travel = p['travel'] - p['travel'].mean()
    j[..., 0] += travel[:, None]
    return j


# ---------------------------------------------------------------------------- people


@dataclass
class Person:
    """One figure: motion, placement and appearance."""

    joints: np.ndarray        # (T, 19, 2) body heights
    height: float             # pixels
    x: float                  # pixels, body centre
    ground: float             # pixels, feet row
    facing: int               # +1 right, -1 left
    limb: float               # pixels
    head: float               # pixels
    surface: tuple            # exposed body colour: skin or covering
    torso: tuple
    sleeve: tuple
    pants: tuple
    shoes: tuple
    hair: tuple
    face_mode: str            # 'face' | 'back' | 'helmet'
    helmet: tuple
    long_hair: bool
    bare: bool
    woven: bool               # the shirt is skin-toned cloth with a weave (``apply_weave``)
    nearness: float           # depth value of the torso, 0..255


def _choice(rng: np.random.Generator, items) -> tuple:
    return tuple(float(v) for v in items[int(rng.integers(len(items)))])


def make_person(rng: np.random.Generator, style: DomainStyle, domain: str, action: str,
                bits: np.ndarray, num_frames: int, x: float, height: float, ground: float,
                nearness: float) -> Person:
    """Draw one person's motion and appearance; ``bits`` are the 5 privacy labels."""
    skin, face, gender, nudity = (bool(b) for b in bits[:4])
    period = _PERIODS.get(action, 16) * rng.uniform(0.8, 1.25)
    amp = rng.uniform(0.8, 1.2)
    phase = rng.uniform(0, 2 * np.pi)
    yaw = rng.uniform(0.75, 1.0)
    shoulder = (0.085 if gender else 0.115) * yaw * rng.uniform(0.92, 1.08)
    hip = (0.085 if gender else 0.055) * yaw * rng.uniform(0.92, 1.08)
    joints = skeleton(action, num_frames, period, phase, amp, shoulder, hip,
                      rng.normal(0, 0.06, 8), style.build)
    tone = SKIN_TONES[int(rng.integers(len(SKIN_TONES)))] * rng.uniform(0.94, 1.04)
    cover = COVER_COLOURS[int(rng.integers(len(COVER_COLOURS)))]
    surface = tuple(float(v) for v in (tone if skin else cover))
    shirt = _choice(rng, _SHIRTS[domain])
    woven = bool(rng.random() < 0.5) and not nudity  # the fine cue for nudity
    if woven:
        shirt = tuple(float(v) for v in tone)
    torso = surface if nudity else shirt
    face_mode = 'face' if face else ('back' if rng.random() < 0.5 else 'helmet')
    return Person(
        joints=joints, height=height, x=x, ground=ground,
        facing=1 if rng.random() < 0.5 else -1,
        limb=max(1.5, style.limb * height * rng.uniform(0.9, 1.15)),
        head=style.head * height * rng.uniform(0.95, 1.08),
        surface=surface, torso=torso, sleeve=torso, pants=_choice(rng, _PANTS[domain]),
        shoes=_choice(rng, _SHOES), hair=_choice(rng, _HAIR), face_mode=face_mode,
        helmet=_choice(rng, _HELMETS), long_hair=gender, bare=nudity, woven=woven,
        nearness=min(nearness, 240.0))


def _shade(colour: tuple, k: float) -> tuple:
    return tuple(min(255.0, v * k) for v in colour)


class _Canvas:
    """RGB, nearness and mask drawn by the same calls, so they line up exactly; ``weave``
    marks the visible woven cloth: 255 where a ``woven`` shape is on top."""

    def __init__(self, rgb: np.ndarray, depth: np.ndarray, mask: np.ndarray,
                 weave: np.ndarray) -> None:
        self.rgb, self.depth, self.mask, self.weave = rgb, depth, mask, weave

    def _layers(self, colour, near, woven):
        return ((self.rgb, colour), (self.depth, near), (self.mask, 255),
                (self.weave, 255 if woven else 0))

    def line(self, a, b, colour, near, thick, woven: bool = False) -> None:
        t = max(1, int(round(thick)))
        for img, col in self._layers(colour, near, woven):
            cv2.line(img, a, b, col, t, cv2.LINE_8, _SHIFT)

    def circle(self, c, r, colour, near) -> None:
        r = max(_ONE // 2, int(r * _ONE))
        for img, col in self._layers(colour, near, False):
            cv2.circle(img, c, r, col, -1, cv2.LINE_8, _SHIFT)

    def poly(self, pts, colour, near, woven: bool = False) -> None:
        for img, col in self._layers(colour, near, woven):
            cv2.fillConvexPoly(img, pts, col, cv2.LINE_8, _SHIFT)

    def mark(self, c, r, colour) -> None:
        """Paint on the surface (eyes, nipples): colour only, the shape is already there."""
        cv2.circle(self.rgb, c, max(_ONE // 2, int(r * _ONE)), colour, -1, cv2.LINE_8, _SHIFT)


def draw_person(cv: _Canvas, p: Person, t: int, cam: tuple[float, float]) -> None:
    """Draw ``p`` at frame ``t`` (painter's order: far limbs, torso, near limbs)."""
    j = p.joints[t]
    px = np.empty_like(j)
    px[:, 0] = p.x + p.facing * j[:, 0] * p.height - cam[0]
    px[:, 1] = p.ground - j[:, 1] * p.height - cam[1]
    q = np.round(px * _ONE).astype(np.int32)
    pt = [tuple(v) for v in q.tolist()]
    n = p.nearness
    limb, head = p.limb, p.head
    far = 0.8

    def leg(hip, knee, ankle, toe, k, near):
        cv.line(pt[hip], pt[knee], _shade(p.pants, k), near, limb * 1.25)
        cv.line(pt[knee], pt[ankle], _shade(p.pants, k), near, limb * 1.1)
        cv.line(pt[ankle], pt[toe], _shade(p.shoes, k), near, limb * 0.9)

    def arm(sho, elb, wri, hand, k, near):
        cv.line(pt[sho], pt[elb], _shade(p.sleeve, k), near, limb, woven=p.woven)
        cv.line(pt[elb], pt[wri], _shade(p.surface, k), near, limb * 0.85)
        cv.circle(pt[hand], limb * 0.75, _shade(p.surface, k), near)

    leg(L_HIP, L_KNE, L_ANK, L_TOE, far, n - 8)
    arm(L_SHO, L_ELB, L_WRI, L_HAND, far, n - 6)
    up = px[NECK] - px[PELVIS]
    up_n = up / max(np.linalg.norm(up), 1e-6)
    side = np.array([-up_n[1], up_n[0]])
    hair_back = None
    if p.long_hair and p.face_mode != 'helmet':
        h0 = px[HEAD] + side * head * 1.05
        h1 = px[HEAD] - side * head * 1.05
        hair_back = np.round(np.array([h0, h1, h1 - up_n * head * 2.6, h0 - up_n * head * 2.6])
                             * _ONE).astype(np.int32)
        if p.face_mode == 'face':  # hanging behind the shoulders
            cv.poly(hair_back, p.hair, n - 4)
    # Torso: shoulders and hips widened by the limb radius, then the waistband.
    sho_w = side * limb * 0.5
    torso = np.array([px[R_SHO] + sho_w, px[L_SHO] - sho_w, px[L_HIP] - sho_w * 0.8,
                      px[R_HIP] + sho_w * 0.8])
    cv.poly(np.round(torso * _ONE).astype(np.int32), p.torso, n, woven=p.woven)
    waist = np.array([torso[3], torso[2], torso[2] + (torso[1] - torso[2]) * 0.15,
                      torso[3] + (torso[0] - torso[3]) * 0.15])
    cv.poly(np.round(waist * _ONE).astype(np.int32), p.pants, n)
    cv.line(pt[NECK], pt[HEAD], p.surface, n + 1, limb * 0.9)
    if p.bare:  # nipples and navel: a bare torso, not a skin-coloured shirt
        dark = _shade(p.surface, 0.55)
        chest = px[NECK] - up * 0.28
        for sgn in (-1, 1):
            cv.mark(tuple(np.round((chest + side * sgn * limb * 0.75) * _ONE).astype(int)),
                    limb * 0.22, dark)
        cv.mark(tuple(np.round((px[PELVIS] + up * 0.3) * _ONE).astype(int)), limb * 0.2, dark)
    leg(R_HIP, R_KNE, R_ANK, R_TOE, 1.0, n + 4)
    _draw_head(cv, p, px, pt, up_n, side, n + 2)
    if hair_back is not None and p.face_mode == 'back':  # seen from behind: hair over the back
        cv.poly(hair_back, p.hair, n + 3)
    arm(R_SHO, R_ELB, R_WRI, R_HAND, 1.0, n + 8)


def _draw_head(cv: _Canvas, p: Person, px, pt, up, side, near) -> None:
    head = p.head
    centre = pt[HEAD]
    if p.face_mode == 'helmet':
        cv.circle(centre, head * 1.1, p.helmet, near)
        visor = px[HEAD] + side * p.facing * head * 0.25
        cv.mark(tuple(np.round(visor * _ONE).astype(int)), head * 0.55, (20, 20, 25))
        return
    if p.face_mode == 'back':
        cv.circle(centre, head, p.hair, near)
        return
    cv.circle(centre, head, p.surface, near)
    # Hair cap on the top half of the head.
    top = px[HEAD] + up * head * 0.45
    cv.poly(np.round(np.array([px[HEAD] + side * head * 1.02, px[HEAD] - side * head * 1.02,
                               top - side * head * 0.75 + up * head * 0.5,
                               top + side * head * 0.75 + up * head * 0.5]) * _ONE).astype(np.int32),
            p.hair, near)
    # Facial features, turned a little towards the facing direction.
    look = px[HEAD] + side * p.facing * head * 0.15 - up * head * 0.1
    for sgn in (-1, 1):
        eye = look + side * sgn * head * 0.42
        cv.mark(tuple(np.round(eye * _ONE).astype(int)), head * 0.26, (250, 250, 250))
        cv.mark(tuple(np.round(eye * _ONE).astype(int)), head * 0.15, (15, 15, 20))
    mouth = look - up * head * 0.48
    cv.mark(tuple(np.round(mouth * _ONE).astype(int)), head * 0.2, (150, 30, 40))


# ---------------------------------------------------------------------------- scenes


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
    small = rng.random((cells, cells)).astype(np.float32)
    return cv2.resize(small, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


def background(rng: np.random.Generator, style: DomainStyle, side: int,
               horizon: float) -> tuple[np.ndarray, np.ndarray]:
    """An RGB scene ``(side, side, 3)`` float32 and its nearness map (uint8)."""
    rows = np.arange(side, dtype=np.float32)[:, None]
    cols = np.arange(side, dtype=np.float32)[None, :]
    rgb = np.empty((side, side, 3), np.float32)
    hz = int(horizon)
    back_near = rng.uniform(15, 45)
    floor_near = rng.uniform(120, 160)
    depth = np.empty((side, side), np.float32)
    depth[:hz] = back_near
    depth[hz:] = back_near + (floor_near - back_near) * (rows[hz:] - hz) / max(side - hz, 1)
    if not style.outdoor:
        wall = rng.uniform(90, 230, 3).astype(np.float32)
        kind = rng.integers(4)
        period = rng.uniform(5, 14)
        if kind == 0:
            pattern = 0.9 + 0.1 * (np.sin(cols * 2 * np.pi / period) > 0)
        elif kind == 1:
            pattern = 0.92 + 0.08 * (((rows // period) + (cols // (2 * period))) % 2)
            pattern = pattern * (1 - 0.25 * ((rows % period) < 1))
        elif kind == 2:
            pattern = 0.85 + 0.3 * _smooth_noise(rng, (side, side), 6)
        else:
            pattern = np.ones((side, side), np.float32) * 0.95
        pattern = np.broadcast_to(pattern, (side, side))
        rgb[:hz] = wall * pattern[:hz, :, None]
        # A picture, door or window on the wall: clutter that is not a person.
        for _ in range(int(rng.integers(0, 3))):
            w, h = rng.uniform(8, 30, 2)
            x0, y0 = rng.uniform(0, side - w), rng.uniform(0, max(hz - h, 1))
            rgb[int(y0):int(y0 + h), int(x0):int(x0 + w)] = rng.uniform(30, 240, 3)
        floor = rng.uniform(60, 200, 3).astype(np.float32)
        fkind = rng.integers(3)
        if fkind == 0:  # planks
            plank = 0.85 + 0.15 * _smooth_noise(rng, (side, side), 12)
            pattern = plank * (1 - 0.3 * ((rows - hz) % rng.uniform(4, 8) < 1))
        elif fkind == 1:  # tiles
            cell = rng.uniform(8, 16)
            pattern = 0.85 + 0.15 * (((rows // (cell / 2)) + (cols // cell)) % 2)
        else:  # carpet
            pattern = 0.8 + 0.25 * _smooth_noise(rng, (side, side), 20)
        pattern = np.broadcast_to(pattern, (side, side))
        rgb[hz:] = floor * pattern[hz:, :, None]
    else:
        sky_top = rng.uniform([60, 110, 170], [190, 210, 255]).astype(np.float32)
        sky_low = rng.uniform([170, 160, 150], [255, 240, 230]).astype(np.float32)
        a = (rows[:hz] / max(hz, 1))[..., None]
        rgb[:hz] = sky_top * (1 - a) + sky_low * a
        # A skyline of buildings or hills, at the sky's far distance plus a little.
        skyline = hz - np.abs(np.cumsum(rng.normal(0, 1.5, side))) % (hz * 0.6 + 1)
        if rng.random() < 0.5:
            skyline = hz - np.repeat(rng.uniform(0.1, 0.6, side // 8 + 1) * hz, 8)[:side]
        building = rng.uniform(40, 120, 3).astype(np.float32)
        mask = rows[:hz] >= skyline[None, :]
        rgb[:hz][mask] = building
        depth[:hz][mask] = back_near + 12
        depth[:hz][~mask] = 0.0
        ground = np.array([rng.uniform(50, 120), rng.uniform(110, 170), rng.uniform(40, 90)]
                          if rng.random() < 0.5 else rng.uniform(90, 170, 1).repeat(3),
                          np.float32)
        pattern = 0.75 + 0.35 * _smooth_noise(rng, (side, side), 30)
        rgb[hz:] = ground * pattern[hz:, :, None]
        if rng.random() < 0.5:  # a path or lane marking
            lane = int(rng.uniform(hz + 3, side - 3))
            rgb[lane:lane + 2] = 230.0
    # Light falls off across the room.
    grad = 1.0 + rng.uniform(-0.25, 0.25) * (cols / side - 0.5)
    rgb *= grad[..., None]
    return np.clip(rgb, 0, 255), np.clip(depth, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------- clips


def render_clip(rng: np.random.Generator, domain: str, action: str, bits: np.ndarray,
                num_frames: int, size: int = RENDER_SIZE, draw_people: bool = True,
                companion_action: str = 'idle', weave_maps: bool = False):
    """One clip as uint8 ``(T, size, size, 5)``: RGB, nearness, person mask.

    With ``weave_maps``, also the uint8 ``(T, size, size)`` map of visible woven cloth (255),
    for ``apply_weave`` once the clip has its stored size. Every random number is drawn before
    the people are drawn, so ``draw_people=False`` gives the very same scene, lighting and
    noise without them (the tests' alignment check).
    """
    style = DOMAINS[domain]
    s = float(size)
    margin = int(round(style.jitter * 2 + style.pan / 2 + 3))
    horizon = rng.uniform(*style.horizon) * s
    scene, scene_depth = background(rng, style, size + 2 * margin, horizon + margin)
    height = rng.uniform(*style.scale) * s
    ground = rng.uniform(*style.ground) * s
    x = rng.uniform(0.38, 0.62) * s
    people = []
    if bits[4]:  # relationship: a second person close by, slightly behind
        other_side = 1 if rng.random() < 0.5 else -1
        x = np.clip(x - other_side * 0.14 * s, 0.3 * s, 0.7 * s)
        gap = rng.uniform(0.24, 0.34) * s
        other_bits = (rng.random(5) < 0.5).astype(np.uint8)
        other_h = height * rng.uniform(0.85, 1.02)
        other_ground = ground - rng.uniform(1, 4) * s / 112
        people.append(make_person(rng, style, domain, companion_action, other_bits, num_frames,
                                  x + other_side * gap, other_h, other_ground,
                                  _near_at(scene_depth, other_ground + margin) + 22))
    people.append(make_person(rng, style, domain, action, bits, num_frames, x, height, ground,
                              _near_at(scene_depth, ground + margin) + 30))
    # Camera: slow pan plus smoothed shake; lighting: slow flicker and a colour cast.
    t = np.arange(num_frames)
    pan = rng.uniform(-style.pan, style.pan, 2) * (t[:, None] / max(num_frames - 1, 1) - 0.5)
    shake = np.cumsum(rng.normal(0, style.jitter, (num_frames, 2)), 0) * 0.5
    shake -= shake.mean(0)
    cam = np.clip(pan + shake, -margin + 1, margin - 1)
    gain = rng.uniform(0.75, 1.15) * (1 + rng.uniform(0, 0.12)
                                      * np.sin(2 * np.pi * t / rng.uniform(12, 40)
                                               + rng.uniform(0, 2 * np.pi)))
    cast = rng.uniform(0.9, 1.1, 3).astype(np.float32)
    sigma = rng.uniform(*style.noise)
    noise = rng.standard_normal((num_frames, size, size, 3), dtype=np.float32) * sigma
    rgb = np.empty((num_frames, size, size, 3), np.float32)
    depth = np.empty((num_frames, size, size), np.uint8)
    mask = np.zeros((num_frames, size, size), np.uint8)
    weave = np.zeros((num_frames, size, size), np.uint8)
    for f in range(num_frames):
        cx, cy = cam[f]
        ox, oy = int(round(cx)) + margin, int(round(cy)) + margin
        rgb[f] = scene[oy:oy + size, ox:ox + size]
        depth[f] = scene_depth[oy:oy + size, ox:ox + size]
        if draw_people:
            canvas = _Canvas(rgb[f], depth[f], mask[f], weave[f])
            for person in people:
                draw_person(canvas, person, f, (ox - margin, oy - margin))
    rgb *= (gain[:, None, None, None] * cast).astype(np.float32)
    rgb += noise
    out = np.empty((num_frames, size, size, 5), np.uint8)
    np.clip(rgb, 0, 255, out=rgb)
    out[..., :3] = rgb
    out[..., 3] = depth
    out[..., 4] = mask
    return (out, weave) if weave_maps else out


WEAVE_AMPLITUDE = 40  # grey levels, less near black and white so the mean stays the colour


def apply_weave(clip: np.ndarray, weave: np.ndarray) -> np.ndarray:
    """Give woven cloth its weave, in place, at the clip's own size: a checkerboard of
    +-``WEAVE_AMPLITUDE`` at the pixel pitch, where ``weave`` (same size) is 255.

    Each pair of neighbouring pixels averages to the cloth's colour, so 2x area downsampling
    removes the weave exactly and any blur nearly so; only full-resolution frames show it.
    """
    _, h, w, _ = clip.shape
    checker = np.where((np.arange(h)[:, None] + np.arange(w)[None, :]) % 2 == 0, 1, -1)
    rgb = clip[..., :3].astype(np.int16)
    amp = np.minimum(np.minimum(rgb, 255 - rgb), WEAVE_AMPLITUDE)
    woven = (weave > 0)[..., None]
    clip[..., :3] = np.where(woven, rgb + amp * checker[None, :, :, None], rgb).astype(np.uint8)
    return clip


def _near_at(scene_depth: np.ndarray, row: float) -> float:
    """Nearness of the floor where a person stands."""
    r = int(np.clip(row, 0, scene_depth.shape[0] - 1))
    return float(scene_depth[r, scene_depth.shape[1] // 2])


def style_frame(rng: np.random.Generator, size: int) -> np.ndarray:
    """One grey depth frame ``(size, size)`` in the manner of a Kinect depth image.

    One or two people (two in most, as in the SBU Kinect Interaction set) in a room, bright
    when near; the sensor's marks are kept: an infrared shadow (no reading) beside each
    person, scattered dropouts and coarse depth steps.
    """
    action = ACTIONS[int(rng.integers(len(ACTIONS)))]
    bits = (rng.random(5) < 0.5).astype(np.uint8)
    bits[4] = rng.random() < 0.7
    clip = render_clip(rng, 'a', action, bits, 8, size=size)
    frame = clip[int(rng.integers(8))]
    grey = frame[..., 3].astype(np.float32)
    person = frame[..., 4] > 0
    shift = max(1, size // 40)
    grey[np.roll(person, -shift, axis=1) & ~person] = 0.0
    grey[_smooth_noise(rng, (size, size), max(4, size // 6)) > 0.94] = 0.0
    grey = np.floor(grey / 6) * 6 + rng.normal(0, 1.0, grey.shape) * (grey > 0)
    return np.clip(grey, 0, 255).astype(np.uint8)
